"""The agent loop: ask the backend for a turn, carry out its tool calls, repeat until finished.

Pure Python, no Jupyter import: the magic, the CLI, the server extension and the
Jupyter AI persona all drive this one loop and only render its events.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any
from collections.abc import Callable, Generator, Iterator

from jupyter_medagent.contracts.budget import Budget, BudgetExceeded
from jupyter_medagent.agent.context import compact_history
from jupyter_medagent.contracts.events import Event, Finished, Message, MessageDelta, Plan, Progress, Repair, Results, Usage
from jupyter_medagent.notebook.headline import headline
from jupyter_medagent.agent.protocols import (AgentView, Backend, Executor, Judge, ModelTurn, Observation, Step,
                                              TokenUsage, ToolCall)
from jupyter_medagent.agent.skills import ALL_SKILL_TOOLS
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.agent.tools import Approver, SafetyCheck, StopRequested, Toolbox
from jupyter_medagent.contracts.metric_keys import prompt_text as metric_keys_text
from jupyter_medagent.contracts.errors import KernelDied, MedagentError, NotebookWriteError
from jupyter_medagent.judge.panel import default_judges
from jupyter_medagent.kernel import new_kernel_manager
from jupyter_medagent.notebook import DraftNotebook, free_path, reexecute_notebook, refined_notebook, write_notebook
from jupyter_medagent.notebook.refine import ModelAuthor, is_guard_cell
from jupyter_medagent.safety.quoting import quote_untrusted, unquote
from jupyter_medagent.safety.redact import Redactor


SOLVED_BECAUSE = {
    "yes": "the task is done, and the notebook re-ran top to bottom in a fresh kernel to the same numbers",
    "skipped": "the task is done; the notebook was not re-run to check its numbers (verification was switched off)",
}


def load_system_prompt(tools=()) -> str:
    """The system prompt, with a paragraph for each skill tool among ``tools`` (the names a backend may call)."""
    prompts = resources.files("jupyter_medagent.prompts")
    skills = [prompts.joinpath("skills", f"{name}.md").read_text().strip() for name in ALL_SKILL_TOOLS if name in tools]
    system = prompts.joinpath("system.md").read_text().strip().replace("{metric_keys}", metric_keys_text())
    return "\n\n".join([system, *skills]) + "\n"


class Agent:
    def __init__(self, task: Task, backend: Backend, executor: Executor, *, judges: list[Judge] | None = None,
                 budget: Budget | None = None, approver: Approver | None = None, safety: SafetyCheck | None = None,
                 notebook_path=None, reexecute: bool = True, isolation=None, redactor: Redactor | None = None,
                 cell_timeout: float | None = None, on_kernel_death: str = "fail", notices=(), skills: str = "all",
                 on_live: Callable[[Event], None] | None = None, owns_output_dir: bool = False):
        """``isolation`` (a KernelIsolation) decides the verification re-run's kernel; ``redactor`` scrubs
        everything bound for a model or a notebook; ``on_kernel_death``: "fail" or "restart"; ``skills``: which
        skill tools the backend gets (agent/skills.py: none, reference or all); ``on_live`` receives a running
        cell's live events when the executor runs cells inline (see Toolbox); ``owns_output_dir``: the task's output
        folder was made for this run, so it is removed again if the run leaves it empty."""
        self.task, self.backend, self.executor = task, backend, executor
        self.budget = budget or Budget()
        self.draft = DraftNotebook()
        self.redactor = redactor or Redactor()
        self.toolbox = Toolbox(task, executor, self.draft, default_judges(judges), approver, safety,
                               on_cell_done=lambda cell: self._save_draft(), redactor=self.redactor,
                               cell_timeout=cell_timeout, skills=skills, on_live=on_live)
        requested = Path(notebook_path or Path(task.output_dir) / "medagent.ipynb")
        self.notebook_path, self.notebook_renamed = free_path(requested)
        self.reexecute = reexecute
        self.isolation = isolation
        self.on_kernel_death = on_kernel_death
        self.notices = list(notices)
        self.owns_output_dir = owns_output_dir
        self._reexecution = None  # the verification re-run's kernel manager, while it runs
        self._reproduction = None  # how the re-run's numbers compare with the reported ones (notebook/reproduce.py)
        self.history: list[Step] = []
        self.turns = 0  # model replies so far: what the step budget counts
        self.tokens = 0
        self.cost_usd = 0.0
        self._stop = threading.Event()
        self._started = 0.0

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Thread-safe (and safe from a signal handler): end the run; a running cell is interrupted,
        a running verification re-run loses its kernel."""
        self._stop.set()
        if self._reexecution is not None and getattr(self._reexecution, "provisioner", None) is not None:
            process = getattr(self._reexecution.provisioner, "process", None)
            if process is not None:
                process.kill()
        try:
            self.executor.interrupt()
        except Exception:  # a dead kernel cannot be interrupted; the loop notices the stop anyway
            pass

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ the loop
    def run(self) -> Iterator[Event]:
        self._started = time.monotonic()
        malformed = repairs_shown = 0
        tools = self.toolbox
        system_prompt = load_system_prompt(tools.schemas)
        for notice in self.notices:
            yield Message(notice)
        if getattr(self.backend, "notice", None):  # e.g. a model without a known price
            yield Message(self.backend.notice)
        if self.notebook_renamed:
            yield Message(f"The requested notebook already exists and is kept as it is; this run writes {self.notebook_path.name}.")
        while True:
            if self.stopped:
                yield from self._finish("stopped", "stopped by the user")
                return
            spent = self.budget.exceeded(self.turns, time.monotonic() - self._started, self.tokens, self.cost_usd)
            if spent:
                yield from self._finish("failed", spent)
                return
            view = self.redactor.scrub_view(AgentView(
                self.task.request, self.task.data_dir, list(tools.schemas.values()), system_prompt,
                compact_history(self.history), [c.summary() for c in self.draft.cells], self.turns,
                self.budget.max_steps, self.cost_usd, self.budget.max_cost_usd, self.task.output_dir,
                self.task.relative_paths, self.tokens, self.budget.max_tokens))
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
            self.turns += 1
            tools.turn = self.turns
            yield from self._account(turn.usage)
            # Backends that keep a repair log (the offline planner does) get each new entry shown as it fires.
            for repair in getattr(self.backend, "repairs", [])[repairs_shown:]:
                yield Repair(repair.get("cell"), repair["rule"], f"{repair['error']} -> {repair['fix']}")
            repairs_shown = len(getattr(self.backend, "repairs", []))
            if turn.plan:  # a person reads these: without the fences the model reads data in
                yield Plan(turn.plan, unquote(turn.text))
            elif turn.text:
                yield Message(unquote(turn.text))
            if not turn.tool_calls:
                malformed += 1
                self.history.append(Step(ToolCall("(none)", {}), Observation(
                    "Your reply contained no tool call. Act through the tools; call finish when done.", is_error=True),
                    self.turns))
            for call in turn.tool_calls:
                problem = tools.problem_with(call)
                if problem:
                    malformed += 1
                    self.history.append(Step(call, Observation(problem, is_error=True), self.turns))
                    continue
                malformed = 0
                try:
                    observation = yield from tools.dispatch(call)
                except StopRequested:
                    yield from self._finish("stopped", "stopped at an approval prompt")
                    return
                except NotebookWriteError as exc:
                    yield from self._finish("failed", str(exc))
                    return
                except KernelDied as exc:
                    if self.stopped:
                        yield from self._finish("stopped", "stopped by the user")
                        return
                    if self.on_kernel_death != "restart" or not getattr(self.executor, "can_restart", False):
                        yield from self._finish("failed", str(exc))
                        return
                    observation = yield from self._restart_kernel(str(exc))
                except Exception as exc:  # a tool that breaks (unreadable data) is reported, not raised
                    # A MedagentError already says, in plain words, which file is at fault and why.
                    problem = str(exc) if isinstance(exc, MedagentError) else f"{type(exc).__name__}: {exc}"
                    observation = Observation(quote_untrusted(f"{call.name} failed: {type(exc).__name__}: {exc}",
                                                              "tool error"), data={"problem": problem}, is_error=True)
                for usage in tools.drain_usage():  # model judges spend tokens too
                    yield from self._account(usage)
                self.history.append(Step(call, observation, self.turns))
                finish = observation.data.get("finish")
                if finish:
                    yield from self._finish(finish["status"], finish["summary"] if finish["status"] != "solved"
                                            else "the task is done", summary=finish["summary"])
                    return
                if self.stopped:
                    break
            if malformed >= self.budget.max_malformed:
                yield from self._finish("failed", f"the model's replies were malformed {malformed} times in a row; "
                                        f"last problem: {self.history[-1].observation.text}")
                return

    def abandon(self, reason: str) -> Iterator[Event]:
        """End a run whose loop was torn down (a second Ctrl-C): the partial notebook is kept, marked stopped."""
        self._stop.set()
        yield from self._finish("stopped", reason)

    def _restart_kernel(self, death: str) -> Generator[Event, None, Observation]:
        """A fresh kernel in place of the dead one, with every kept cell run again in order."""
        yield Message(f"{death}; restarting it and replaying the {len(self.draft.surviving())} kept cell(s).")
        self.executor.restart()
        for cell in self.draft.surviving():
            result = self.executor.execute(cell.source, timeout=self.toolbox.cell_timeout)
            if not result.ok:
                cell.status = "error"
                return Observation(f"{death}. A fresh kernel was started, but replaying cell {cell.id} failed: "
                                   f"{result.error['ename']}: {result.error['evalue']}", is_error=True)
        return Observation(f"{death}. A fresh kernel was started and the kept cells "
                           f"({', '.join(c.id for c in self.draft.surviving()) or 'none'}) were run again; "
                           "the cell that was running when it died did not finish.", is_error=True)

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
    def _provenance(self, status: str, reason: str, reexecuted_ok: bool | None,
                    verified: str = "not yet") -> dict[str, Any]:
        tools = self.toolbox
        return {
            "backend": getattr(self.backend, "name", type(self.backend).__name__),
            "model": getattr(self.backend, "model", ""),
            "status": status,
            "reason": reason,
            "steps": self.turns,  # model turns (what the step budget counts)
            "tool_calls": len(self.history),
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(time.monotonic() - self._started, 1),
            "cells_written": len(self.draft.cells),
            "cells_kept": len(self.draft.surviving()),
            "cells_skipped_by_user": [c.id for c in self.draft.cells if c.status == "skipped"],
            "cells_edited_by_user": [c.id for c in self.draft.cells if c.user_edits],
            "cell_errors": tools.errors_seen,
            "plan": plan.to_dict() if (plan := getattr(self.backend, "plan", None)) else None,
            "repairs": list(getattr(self.backend, "repairs", [])),
            "findings_fixed": list(getattr(self.backend, "fixes", [])),
            "verdicts": tools.verdicts,
            "judge_disagreements": tools.disagreements,
            "data_dir": self.task.data_dir,
            "reexecuted_ok": reexecuted_ok,
            "verified": verified,
            "reproduction": self._reproduction.to_dict() if self._reproduction else None,
        }

    def _author(self) -> ModelAuthor | None:
        """Who wrote the cells, when it was a model (the offline planner's code is ours)."""
        name = getattr(self.backend, "name", "offline")
        if name == "offline":
            return None
        model = getattr(self.backend, "model", "")
        data = self.task.data_dir
        return ModelAuthor(f"{name}: {model}" if model else name, os.path.abspath(self.task.output_dir),
                           os.path.abspath(data) if data else None)

    def _plan_markdown(self) -> str:
        """The backend's plan as the reader sees it (backends that plan ahead, like the offline planner)."""
        plan = getattr(self.backend, "plan", None)
        return plan.markdown() if plan else ""

    def _write(self, nb, path=None) -> None:
        write_notebook(self.redactor.scrub_notebook(nb), path or self.notebook_path)

    def _save_draft(self, status: str = "running", reason: str = "in progress") -> None:
        nb = refined_notebook(self.task.request, self.draft.cells, self.toolbox.metrics,
                              self._provenance(status, reason, None), partial=True,
                              plan_markdown=self._plan_markdown(), author=self._author())
        self._write(nb)

    def _finish(self, status: str, reason: str, summary: str = "") -> Iterator[Event]:
        reason, summary = unquote(reason), unquote(summary)  # for people (and the notebook), not for a model
        metrics = dict(self.toolbox.metrics)
        kept = self.draft.surviving()
        reexecuted_ok, verified = None, "not run"
        try:
            if status == "solved" or (status == "failed" and kept):
                verified = ("skipped" if not self.reexecute else
                            "not yet" if status == "solved" and not self.stopped else "not run")
                nb = refined_notebook(self.task.request, self.draft.kept_or_skipped(), metrics,
                                      self._provenance(status, reason, None, verified), summary=summary,
                                      plan_markdown=self._plan_markdown(), verified=verified, author=self._author())
                self._write(nb)
                if status == "solved" and not self.stopped:
                    yield Results(summary, headline(metrics), metrics)  # the answer first; verifying takes as long as the run
                if verified == "not yet":
                    reexecuted_ok, error = yield from self._reexecute()
                    verified = "yes" if reexecuted_ok else "no"
                    if self.stopped:
                        status, reason = "stopped", "stopped by the user during the verification re-run"
                    elif not reexecuted_ok:
                        status, reason = "failed", f"the refined notebook did not re-run on its own: {error}"
                    else:  # it ran; did it give the numbers the run reports?
                        self._reproduction = self._compare_rerun(metrics, summary)
                        if not self._reproduction.reproduced:
                            verified = "not reproduced"
                            status, reason = "failed", self._reproduction.reason()
            elif self.draft.cells:
                self._save_draft(status, reason)  # stopped: keep everything so far, as a partial notebook
            if status == "solved":
                unmet = self.task.unmet(metrics)
                if unmet:
                    status, reason = "failed", "the quality bar was not met: " + "; ".join(unmet)
                else:  # the closing sentence says what "solved" rests on
                    reason = SOLVED_BECAUSE.get(verified, reason)
            if self.notebook_path.exists():
                self._stamp(status, reason, reexecuted_ok, verified)
        except NotebookWriteError as exc:
            status, reason = "failed", self._mark_unwritable(status, reason, exc)
        self._drop_unused_output_folder()
        yield Finished(status, reason, summary, metrics, str(self.notebook_path) if self.notebook_path.exists() else None,
                       reexecuted_ok, headline(metrics), verified)

    def _drop_unused_output_folder(self) -> None:
        """A run that ended before anything was written there (bad data, a refused request) leaves no empty
        ``*_files/`` folder beside the notebook."""
        folder = Path(self.task.output_dir)
        try:
            if self.owns_output_dir and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        except OSError:  # in use or not ours to remove: it stays
            pass

    def _mark_unwritable(self, status: str, reason: str, exc: NotebookWriteError) -> str:
        """The disk is full (or the file too large): mark what is on disk with the smallest notebook that
        says why, the cells without their outputs."""
        reason = f"{reason}; then {exc}" if status == "failed" and str(exc) not in reason else str(exc)
        nb = refined_notebook(self.task.request, [replace(c, outputs=[]) for c in self.draft.cells],
                              {}, self._provenance("failed", reason, None), partial=True, author=self._author())
        try:
            self._write(nb)
        except NotebookWriteError:
            try:  # in place: the old file's blocks are freed first
                import nbformat

                with open(self.notebook_path, "w", encoding="utf-8") as handle:
                    nbformat.write(self.redactor.scrub_notebook(nb), handle)
            except OSError:
                pass
        return reason

    def _reexecute(self) -> Generator[Event, None, tuple[bool, str | None]]:
        """The verification re-run, in a worker thread (nbclient takes SIGINT for itself in the main thread,
        and kills its kernel, so the run would not know the user asked it to stop), its progress shown."""
        if self.isolation:
            manager = new_kernel_manager(self.isolation, armed_always=True, asynchronous=True)
        else:  # ours rather than nbclient's own, so that stop() can kill its kernel
            from jupyter_client.manager import AsyncKernelManager

            manager = AsyncKernelManager(kernel_name="python3")
        self._reexecution = manager
        outcome: dict[str, Any] = {}
        done: queue.Queue[int] = queue.Queue()
        import nbformat

        total = sum(c.cell_type == "code" and not is_guard_cell(c)
                    for c in nbformat.read(self.notebook_path, as_version=4).cells)
        started = time.monotonic()
        yield Message(f"Re-running the refined notebook top to bottom in a fresh kernel to verify it ({total} cells; "
                      "the results above stand meanwhile)...")

        def rerun() -> None:
            try:
                outcome["result"] = reexecute_notebook(self.notebook_path, kernel_manager=manager,
                                                       cwd=self.task.output_dir, scrub=self.redactor.scrub_notebook,
                                                       on_cell_done=lambda: done.put(1))
            except BaseException as exc:  # re-raised in the loop's thread
                outcome["error"] = exc

        worker = threading.Thread(target=rerun, name="medagent-reexecution", daemon=True)
        worker.start()
        finished = 0
        try:
            while worker.is_alive() or not done.empty():
                try:
                    finished += done.get(timeout=0.25)
                except queue.Empty:
                    continue
                elapsed = time.monotonic() - started
                eta = elapsed / finished * (total - finished) if finished else None
                yield Progress("verification", finished, total, round(elapsed, 1), eta and round(eta, 1),
                               f"verification: cell {finished} of {total} re-ran")
        except BaseException:  # an interrupt (the magic's kernel Interrupt) or a closed generator: kill the re-run's
            self.stop()        # kernel, or the join below waits for a retraining re-run to end
            raise
        finally:
            worker.join()
            self._reexecution = None
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def _compare_rerun(self, metrics: dict[str, Any], summary: str):
        """The re-run's headline numbers against the reported ones, written into the notebook's Results cell."""
        import nbformat

        from jupyter_medagent.notebook.refine import replace_results, results_markdown
        from jupyter_medagent.notebook.reproduce import compare, notebook_metrics

        nb = nbformat.read(self.notebook_path, as_version=4)
        reproduction = compare(metrics, notebook_metrics(nb))
        verified = "yes" if reproduction.reproduced else "not reproduced"
        replace_results(nb, results_markdown(metrics, summary, verified, reproduction))
        self._write(nb)
        return reproduction

    def _stamp(self, status: str, reason: str, reexecuted_ok: bool | None, verified: str) -> None:
        """Final provenance into the notebook's metadata (after re-execution, which rewrote the file)."""
        import nbformat

        nb = nbformat.read(self.notebook_path, as_version=4)
        nb.metadata["medagent"] = self._provenance(status, reason, reexecuted_ok, verified)
        self._write(nb)
