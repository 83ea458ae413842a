"""The agent loop: ask the backend for a turn, carry out its tool calls, repeat until finished.

Pure Python, no Jupyter import: the magic, the CLI, the server extension and the Jupyter AI persona all drive
this one loop and only render its events. notebook/recorder.py writes the notebook, notebook/verify.py re-runs it.
"""

from __future__ import annotations

import threading
from contextlib import suppress
import time
from pathlib import Path
from collections.abc import Callable, Generator, Iterator

from jupyter_medagent.contracts.budget import Budget, BudgetExceeded
from jupyter_medagent.agent.context import compact_history
from jupyter_medagent.contracts.events import Event, Finished, Message, MessageDelta, Plan, Repair, Results, Usage
from jupyter_medagent.notebook.headline import headline
from jupyter_medagent.agent.skills import load_system_prompt
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.agent.tools import NO_CALL, Approver, SafetyCheck, StopRequested, Toolbox
from jupyter_medagent.contracts.background import in_background
from jupyter_medagent.contracts.protocols import (AgentView, Backend, Executor, Judge, ModelTurn, Observation, Step,
                                                  TokenUsage, ToolCall, require)
from jupyter_medagent.contracts.errors import KernelDied, NotebookWriteError
from jupyter_medagent.judge.panel import default_judges
from jupyter_medagent.notebook import DraftNotebook, NotebookRecorder
from jupyter_medagent.notebook.reproduce import Reproduction
from jupyter_medagent.notebook.verify import SOLVED_BECAUSE, Verification
from jupyter_medagent.safety.quoting import unquote
from jupyter_medagent.safety.redact import Redactor


class Agent:
    def __init__(self, task: Task, backend: Backend, executor: Executor, *, judges: list[Judge] | None = None,
                 budget: Budget | None = None, approver: Approver | None = None, safety: SafetyCheck | None = None,
                 notebook_path=None, reexecute: bool = True, isolation=None, redactor: Redactor | None = None,
                 cell_timeout: float | None = None, on_kernel_death: str = "fail", notices=(), skills: str = "all",
                 on_live: Callable[[Event], None] | None = None, owns_output_dir: bool = False):
        """``isolation`` (a KernelIsolation) makes the verification re-run's kernel; ``redactor`` scrubs what a model
        or a notebook gets; ``on_kernel_death``: "fail" or "restart"; ``skills``: agent/skills.py; ``on_live``: see
        Toolbox; ``owns_output_dir``: the output folder was made for this run (removed again if left empty)."""
        require(backend, Backend)
        require(executor, Executor)
        self.task, self.backend, self.executor = task, backend, executor
        self.budget = budget or Budget()
        self.draft = DraftNotebook()
        self.redactor = redactor or Redactor()
        self.toolbox = Toolbox(task, executor, self.draft, default_judges(judges), approver, safety,
                               on_cell_done=lambda cell: self.recorder.save_draft(
                                   self.toolbox.metrics, self._provenance("running", "in progress")),
                               redactor=self.redactor, cell_timeout=cell_timeout, skills=skills, on_live=on_live)
        requested = Path(notebook_path or Path(task.output_dir) / "medagent.ipynb")
        self.recorder = NotebookRecorder(task.request, self.draft, backend, requested, task.output_dir, task.data_dir,
                                         self.redactor.scrub_notebook, owns_output_dir)
        self.reexecute, self.isolation, self.on_kernel_death = reexecute, isolation, on_kernel_death
        renamed = f"The requested notebook already exists and is kept as it is; this run writes {self.recorder.path.name}."
        self.notices = [*notices, *filter(None, [backend.notice, renamed if self.recorder.renamed else None])]
        self._verification: Verification | None = None  # the verification re-run, once started (stop() kills it)
        self._reproduction: Reproduction | None = None  # how the re-run's numbers compare with the reported ones
        self.history: list[Step] = []
        self.turns, self.tokens, self.cost_usd = 0, 0, 0.0  # turns: model replies so far, what the step budget counts
        self._stop, self._started = threading.Event(), 0.0

    @property
    def notebook_path(self) -> Path:
        return self.recorder.path

    def stop(self) -> None:
        """Thread-safe, and safe from a signal handler: a running cell is interrupted, a verification re-run killed."""
        self._stop.set()
        if self._verification is not None:
            self._verification.kill()
        with suppress(Exception):  # a dead kernel cannot be interrupted; the loop notices the stop anyway
            self.executor.interrupt()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> Iterator[Event]:
        self._started, malformed, repairs_shown = time.monotonic(), 0, 0
        tools, backend = self.toolbox, self.backend
        system_prompt = load_system_prompt(tools.schemas)
        yield from (Message(notice) for notice in self.notices)
        while not self.stopped:
            spent = self.budget.exceeded(self.turns, time.monotonic() - self._started, self.tokens, self.cost_usd)
            if spent:
                return (yield from self._finish("failed", spent))
            view = self.redactor.scrub_view(AgentView(
                self.task.request, self.task.data_dir, list(tools.schemas.values()), system_prompt,
                compact_history(self.history), [c.summary() for c in self.draft.cells], self.turns,
                self.budget.max_steps, self.cost_usd, self.budget.max_cost_usd, self.task.output_dir,
                self.task.relative_paths, self.tokens, self.budget.max_tokens))
            try:
                turn = yield from self._ask(view)
            except BudgetExceeded as exc:
                return (yield from self._finish("failed", str(exc)))
            except Exception as exc:  # a backend failure ends the run cleanly, with the reason
                return (yield from self._finish("failed", f"the {backend.name} backend failed: {type(exc).__name__}: {exc}"))
            if turn is None:  # stopped while the model was still answering
                continue
            self.turns = tools.turn = self.turns + 1
            yield from self._account(turn.usage)
            for repair in backend.repairs[repairs_shown:]:  # a backend's repair log, each entry shown as it fires
                yield Repair(repair.get("cell"), repair["rule"], f"{repair['error']} -> {repair['fix']}")
            repairs_shown = len(backend.repairs)
            if turn.plan or turn.text:  # a person reads these: without the fences the model reads data in
                yield Plan(turn.plan, unquote(turn.text)) if turn.plan else Message(unquote(turn.text))
            for call in turn.tool_calls or [ToolCall(NO_CALL, {})]:  # a reply without a call is malformed too
                problem = tools.problem_with(call)
                malformed = malformed + 1 if problem else 0
                if problem:
                    self.history.append(Step(call, Observation(problem, is_error=True), self.turns))
                    continue
                try:
                    observation = yield from tools.dispatch(call)
                except StopRequested:
                    return (yield from self._finish("stopped", "stopped at an approval prompt"))
                except NotebookWriteError as exc:
                    return (yield from self._finish("failed", str(exc)))
                except KernelDied as exc:
                    if self.stopped:
                        return (yield from self._finish("stopped", "stopped by the user"))
                    if self.on_kernel_death != "restart" or not self.executor.can_restart:
                        return (yield from self._finish("failed", str(exc)))
                    observation = yield from tools.restart_kernel(str(exc))
                for usage in tools.drain_usage():  # model judges spend tokens too
                    yield from self._account(usage)
                self.history.append(Step(call, observation, self.turns))
                finish = observation.data.get("finish")
                if finish:
                    return (yield from self._finish(finish["status"], finish["summary"] if finish["status"] != "solved"
                                                    else "the task is done", summary=finish["summary"]))
                if self.stopped:
                    break
            if malformed >= self.budget.max_malformed:
                return (yield from self._finish("failed", f"the model's replies were malformed {malformed} times in a "
                                                f"row; last problem: {self.history[-1].observation.text}"))
        yield from self._finish("stopped", "stopped by the user")

    def abandon(self, reason: str) -> Iterator[Event]:
        """End a run whose loop was torn down (a second Ctrl-C): the partial notebook is kept, marked stopped."""
        self._stop.set()
        yield from self._finish("stopped", reason)

    def _ask(self, view: AgentView) -> Generator[Event, None, ModelTurn | None]:
        """The backend's next turn; a streaming one's in a worker thread: its narration shown live, a stop heeded."""
        if not self.backend.streams:
            return self.backend.next_turn(view)
        return (yield from in_background(lambda report: self.backend.next_turn(view, on_text=report),
                                         lambda chunk: [MessageDelta(chunk)], name="medagent-model-call",
                                         stopped=lambda: self.stopped))

    def _account(self, usage: TokenUsage) -> Iterator[Event]:
        self.tokens += usage.input_tokens + usage.output_tokens
        self.cost_usd += usage.cost_usd
        if usage.input_tokens or usage.output_tokens or usage.cost_usd:
            yield Usage(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                        usage.cost_usd, self.tokens, self.cost_usd)

    def _provenance(self, status: str, reason: str, reexecuted_ok: bool | None = None, verified: str = "not yet"):
        tools = self.toolbox
        return self.recorder.provenance(status, reason, reexecuted_ok, verified, self._reproduction, steps=self.turns,
                                        tool_calls=len(self.history), tokens=self.tokens, cost_usd=self.cost_usd,
                                        seconds=time.monotonic() - self._started, cell_errors=tools.errors_seen,
                                        verdicts=tools.verdicts, judge_disagreements=tools.disagreements)

    def _finish(self, status: str, reason: str, summary: str = "") -> Iterator[Event]:
        reason, summary = unquote(reason), unquote(summary)  # for people (and the notebook), not for a model
        metrics, recorder, reexecuted_ok, verified = dict(self.toolbox.metrics), self.recorder, None, "not run"
        try:
            if status == "solved" or (status == "failed" and self.draft.surviving()):
                verified = ("skipped" if not self.reexecute else
                            "not yet" if status == "solved" and not self.stopped else "not run")
                recorder.save_refined(metrics, self._provenance(status, reason, None, verified), summary, verified)
                if status == "solved" and not self.stopped:
                    yield Results(summary, headline(metrics), metrics)  # the answer first; verifying takes as long as the run
                if verified == "not yet":
                    self._verification = Verification(recorder, self.isolation)
                    outcome = yield from self._verification.run(metrics, summary, lambda: self.stopped, self.stop)
                    reexecuted_ok, verified, self._reproduction = outcome.reexecuted_ok, outcome.verified, outcome.reproduction
                    if self.stopped:
                        status, reason = "stopped", "stopped by the user during the verification re-run"
                    elif outcome.problem:
                        status, reason = "failed", outcome.problem
            elif self.draft.cells:  # stopped: keep everything so far, as a partial notebook
                recorder.save_draft(metrics, self._provenance(status, reason))
            if status == "solved":
                unmet = self.task.unmet(metrics)
                status, reason = (("failed", "the quality bar was not met: " + "; ".join(unmet)) if unmet
                                  else (status, SOLVED_BECAUSE.get(verified, reason)))  # what "solved" rests on
            recorder.stamp(self._provenance(status, reason, reexecuted_ok, verified))
        except NotebookWriteError as exc:
            reason = f"{reason}; then {exc}" if status == "failed" and str(exc) not in reason else str(exc)
            status = "failed"
            recorder.mark_unwritable(self._provenance(status, reason))
        recorder.drop_unused_output_folder()
        yield Finished(status, reason, summary, metrics, str(self.notebook_path) if self.notebook_path.exists() else None,
                       reexecuted_ok, headline(metrics), verified)
