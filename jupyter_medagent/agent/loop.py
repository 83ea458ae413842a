"""The agent loop: ask the backend for a turn, carry out its tool calls, repeat until finished.

Pure Python, no Jupyter import: the magic, the CLI, the server extension and the
Jupyter AI persona all drive this one loop and only render its events.
"""

from __future__ import annotations

import queue
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Generator, Iterator

from jupyter_medagent.agent.budget import Budget, BudgetExceeded
from jupyter_medagent.agent.context import compact_history
from jupyter_medagent.agent.events import Event, Finished, Message, MessageDelta, Plan, Repair, Usage
from jupyter_medagent.agent.protocols import (AgentView, Backend, Executor, Judge, ModelTurn, Observation, Step,
                                              TokenUsage, ToolCall)
from jupyter_medagent.agent.task import Task
from jupyter_medagent.agent.tools import Approver, SafetyCheck, StopRequested, Toolbox
from jupyter_medagent.judge.panel import default_judges
from jupyter_medagent.notebook import DraftNotebook, free_path, reexecute_notebook, refined_notebook, write_notebook


def load_system_prompt() -> str:
    return resources.files("jupyter_medagent.prompts").joinpath("system.md").read_text()


class Agent:
    def __init__(self, task: Task, backend: Backend, executor: Executor, *, judges: list[Judge] | None = None,
                 budget: Budget | None = None, approver: Approver | None = None, safety: SafetyCheck | None = None,
                 notebook_path=None, reexecute: bool = True, verification_kernel: Callable[[], Any] | None = None):
        self.task, self.backend, self.executor = task, backend, executor
        self.budget = budget or Budget()
        self.draft = DraftNotebook()
        self.toolbox = Toolbox(task, executor, self.draft, default_judges(judges), approver, safety,
                               on_cell_done=lambda cell: self._save_draft())
        requested = Path(notebook_path or Path(task.output_dir) / "medagent.ipynb")
        self.notebook_path, self.notebook_renamed = free_path(requested)
        self.reexecute = reexecute
        self.verification_kernel = verification_kernel  # makes the kernel manager the re-run uses (None: local)
        self.history: list[Step] = []
        self.tokens = 0
        self.cost_usd = 0.0
        self._stop = threading.Event()
        self._started = 0.0

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Thread-safe: end the run; a running cell is interrupted."""
        self._stop.set()
        self.executor.interrupt()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ the loop
    def run(self) -> Iterator[Event]:
        self._started = time.monotonic()
        malformed = repairs_shown = 0
        tools = self.toolbox
        system_prompt = load_system_prompt()
        if getattr(self.backend, "notice", None):  # e.g. a model without a known price
            yield Message(self.backend.notice)
        if self.notebook_renamed:
            yield Message(f"A notebook of yours already exists at the requested path; writing to {self.notebook_path} instead.")
        while True:
            if self.stopped:
                yield from self._finish("stopped", "stopped by the user")
                return
            spent = self.budget.exceeded(len(self.history), time.monotonic() - self._started, self.tokens, self.cost_usd)
            if spent:
                yield from self._finish("failed", spent)
                return
            view = AgentView(self.task.request, self.task.data_dir, list(tools.schemas.values()), system_prompt,
                             compact_history(self.history), [c.summary() for c in self.draft.cells], len(self.history),
                             self.budget.max_steps, self.cost_usd, self.budget.max_cost_usd)
            try:
                turn = yield from self._ask(view)
            except BudgetExceeded as exc:
                yield from self._finish("failed", str(exc))
                return
            except Exception as exc:  # a backend failure ends the run cleanly, with the reason
                yield from self._finish("failed", f"the {getattr(self.backend, 'name', 'model')} backend failed: "
                                        f"{type(exc).__name__}: {exc}")
                return
            if turn is None:  # stopped while the model was still answering
                continue
            yield from self._account(turn.usage)
            # Backends that keep a repair log (the offline planner does) get each new entry shown as it fires.
            for repair in getattr(self.backend, "repairs", [])[repairs_shown:]:
                yield Repair(repair.get("cell"), repair["rule"], f"{repair['error']} -> {repair['fix']}")
            repairs_shown = len(getattr(self.backend, "repairs", []))
            if turn.plan:
                yield Plan(turn.plan, turn.text)
            elif turn.text:
                yield Message(turn.text)
            if not turn.tool_calls:
                malformed += 1
                self.history.append(Step(ToolCall("(none)", {}), Observation(
                    "Your reply contained no tool call. Act through the tools; call finish when done.", is_error=True)))
            for call in turn.tool_calls:
                problem = tools.problem_with(call)
                if problem:
                    malformed += 1
                    self.history.append(Step(call, Observation(problem, is_error=True)))
                    continue
                malformed = 0
                try:
                    observation = yield from tools.dispatch(call)
                except StopRequested:
                    yield from self._finish("stopped", "stopped at an approval prompt")
                    return
                except Exception as exc:  # a tool that breaks (unreadable data, dead kernel) is reported, not raised
                    observation = Observation(f"{call.name} failed: {type(exc).__name__}: {exc}", is_error=True)
                for usage in tools.drain_usage():  # model judges spend tokens too
                    yield from self._account(usage)
                self.history.append(Step(call, observation))
                finish = observation.data.get("finish")
                if finish:
                    yield from self._finish(finish["status"], finish["summary"] if finish["status"] != "solved"
                                            else "the agent reports the task solved", summary=finish["summary"])
                    return
                if self.stopped:
                    break
            if malformed >= self.budget.max_malformed:
                yield from self._finish("failed", f"the model's replies were malformed {malformed} times in a row; "
                                        f"last problem: {self.history[-1].observation.text}")
                return

    def _ask(self, view: AgentView) -> Generator[Event, None, ModelTurn | None]:
        """The backend's next turn. A streaming backend runs in a worker thread so its narration is shown
        as it arrives and Stop is honoured mid-call (the abandoned call ends at its own time-out)."""
        if not getattr(self.backend, "streams", False):
            return self.backend.next_turn(view)
        chunks: queue.Queue[str | None] = queue.Queue()
        outcome: dict[str, Any] = {}

        def call_model() -> None:
            try:
                outcome["turn"] = self.backend.next_turn(view, on_text=chunks.put)
            except BaseException as exc:  # re-raised in the loop's thread
                outcome["error"] = exc
            finally:
                chunks.put(None)

        threading.Thread(target=call_model, name="medagent-model-call", daemon=True).start()
        while True:
            try:
                chunk = chunks.get(timeout=0.25)
            except queue.Empty:
                if self.stopped:
                    return None
                continue
            if chunk is None:
                break
            yield MessageDelta(chunk)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["turn"]

    def _account(self, usage: TokenUsage) -> Iterator[Event]:
        self.tokens += usage.input_tokens + usage.output_tokens
        self.cost_usd += usage.cost_usd
        if usage.input_tokens or usage.output_tokens or usage.cost_usd:
            yield Usage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                        usage.cost_usd, self.tokens, self.cost_usd)

    # ------------------------------------------------------------------ the end
    def _provenance(self, status: str, reason: str, reexecuted_ok: bool | None) -> dict[str, Any]:
        tools = self.toolbox
        return {
            "backend": getattr(self.backend, "name", type(self.backend).__name__),
            "model": getattr(self.backend, "model", ""),
            "status": status,
            "reason": reason,
            "steps": len(self.history),
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(time.monotonic() - self._started, 1),
            "cells_written": len(self.draft.cells),
            "cells_kept": len(self.draft.surviving()),
            "cell_errors": tools.errors_seen,
            "plan": plan.to_dict() if (plan := getattr(self.backend, "plan", None)) else None,
            "repairs": list(getattr(self.backend, "repairs", [])),
            "findings_fixed": list(getattr(self.backend, "fixes", [])),
            "verdicts": tools.verdicts,
            "judge_disagreements": tools.disagreements,
            "data_dir": self.task.data_dir,
            "reexecuted_ok": reexecuted_ok,
        }

    def _plan_markdown(self) -> str:
        """The backend's plan as the reader sees it (backends that plan ahead, like the offline planner)."""
        plan = getattr(self.backend, "plan", None)
        return plan.markdown() if plan else ""

    def _save_draft(self) -> None:
        nb = refined_notebook(self.task.request, self.draft.cells, self.toolbox.metrics,
                              self._provenance("running", "in progress", None), partial=True,
                              plan_markdown=self._plan_markdown())
        write_notebook(nb, self.notebook_path)

    def _finish(self, status: str, reason: str, summary: str = "") -> Iterator[Event]:
        metrics = dict(self.toolbox.metrics)
        kept = self.draft.surviving()
        reexecuted_ok = None
        if status == "solved" or (status == "failed" and kept):
            nb = refined_notebook(self.task.request, kept, metrics, self._provenance(status, reason, None), summary=summary,
                                  plan_markdown=self._plan_markdown())
            write_notebook(nb, self.notebook_path)
            if self.reexecute and status == "solved" and not self.stopped:
                yield Message("Re-running the refined notebook top to bottom in a fresh kernel to verify it...")
                manager = self.verification_kernel() if self.verification_kernel else None
                reexecuted_ok, error = reexecute_notebook(self.notebook_path, kernel_manager=manager)
                if not reexecuted_ok and status == "solved":
                    status, reason = "failed", f"the refined notebook did not re-run on its own: {error}"
        elif self.draft.cells:
            self._save_draft()  # stopped: keep everything so far, as a partial notebook
        if status == "solved":
            unmet = self.task.unmet(metrics)
            if unmet:
                status, reason = "failed", "the quality bar was not met: " + "; ".join(unmet)
        if self.notebook_path.exists():
            self._stamp(status, reason, reexecuted_ok)
        yield Finished(status, reason, summary, metrics, str(self.notebook_path) if self.notebook_path.exists() else None,
                       reexecuted_ok)

    def _stamp(self, status: str, reason: str, reexecuted_ok: bool | None) -> None:
        """Final provenance into the notebook's metadata (after re-execution, which rewrote the file)."""
        import nbformat

        nb = nbformat.read(self.notebook_path, as_version=4)
        nb.metadata["medagent"] = self._provenance(status, reason, reexecuted_ok)
        write_notebook(nb, self.notebook_path)
