"""The agent's tools (schemas in prompts/tools.json). Each tool is a generator: it yields the
events it causes and returns the Observation the backend sees next."""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import Any
from collections.abc import Callable, Generator

from jupyter_medagent.contracts.events import (ApprovalRequest, CellExecuted, CellSkipped, CellWritten, Event, Message,
                                           Render, Verdict)
from jupyter_medagent.agent.live import LiveOutputs
from jupyter_medagent.contracts.background import in_background
from jupyter_medagent.contracts.mime import COMPUTE_MIME, FINDINGS_MIME, METRICS_MIME
from jupyter_medagent.contracts.protocols import (
    ExecutionResult,
    Executor,
    Judge,
    JudgeVerdict,
    Observation,
    TokenUsage,
    ToolCall,
)
from jupyter_medagent.agent.skills import ALL_SKILL_TOOLS, SKILL_TOOLS, proposal_text, toolkit_reference
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.contracts.errors import DataError, KernelDied, MedagentError, NotebookWriteError
from jupyter_medagent.isolation.outputs import clean_outputs
from jupyter_medagent.judge.panel import merge_verdicts
from jupyter_medagent.kernel.outputs import cut_lines, outputs_as_text
from jupyter_medagent.notebook.draft import DraftCell, DraftNotebook
from jupyter_medagent.safety.confine import confined_data_folder
from jupyter_medagent.safety.quoting import quote_untrusted
from jupyter_medagent.safety.redact import Redactor

ToolResult = Generator[Event, None, Observation]
NO_CALL = "(none)"  # what the history shows for a reply that called no tool
# (cell_id, source, the safety gate's concerns) -> ("run"|"skip"|"edit"|"stop", source)
Approver = Callable[[str, str, list[str]], tuple[str, str]]
SafetyCheck = Callable[[str], list[str]]  # code -> reasons it is refused (empty: allowed)

MAX_TEXT = 6000  # characters of a cell's outputs in one tool result; read_output returns the rest

LIST_VARIABLES = """
import json as _json
def _medagent_variables(shell):
    rows = []
    for name, value in shell.user_ns.items():
        # user_ns_hidden holds what IPython itself put there (In, Out, exit, open, ...).
        if name.startswith("_") or name in shell.user_ns_hidden or type(value).__name__ == "module":
            continue
        row = {"name": name, "type": type(value).__name__}
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            row.update(shape=list(getattr(value, "shape")), dtype=str(value.dtype))
        elif hasattr(value, "__len__") and not isinstance(value, str):
            try:
                row["len"] = len(value)
            except TypeError:
                pass
        rows.append(row)
    return rows
print(_json.dumps(_medagent_variables(get_ipython())))
del _medagent_variables
"""

# Measured in the kernel, not here: the kernel may run on another machine (a gateway, a sandbox with limits).
MEASURE_COMPUTE = f"""
def _medagent_machine():
    from IPython.display import display
    from jupyter_medagent.plan.compute import compute_fingerprint
    machine = compute_fingerprint()
    display({{"text/plain": machine.describe(), "{COMPUTE_MIME}": machine.to_dict()}}, raw=True)
_medagent_machine()
del _medagent_machine
"""


def inspection_text(card, findings: list[dict[str, Any]], convention: str | None) -> str:
    """The data card, the label convention and the quality findings as a model reads them, fenced: file names and
    header fields are the data's words, not the user's."""
    lines = [card.to_text(), f"Cardiac label convention: {convention.upper() if convention else 'not cardiac'}",
             "", f"Quality findings: {len(findings)}"]
    lines += [f"- {f['case']}: {f['kind']} ({f['severity']}): {f['message']}" for f in findings]
    return quote_untrusted("\n".join(lines), "data card")


def load_tool_schemas() -> list[dict[str, Any]]:
    return json.loads(resources.files("jupyter_medagent.prompts").joinpath("tools.json").read_text())


class StopRequested(Exception):
    """The approver chose to stop the run."""


class Toolbox:
    def __init__(self, task: Task, executor: Executor, draft: DraftNotebook, judges: list[Judge],
                 approver: Approver | None = None, safety: SafetyCheck | None = None,
                 on_cell_done: Callable[[DraftCell], None] | None = None, redactor: Redactor | None = None,
                 cell_timeout: float | None = None, skills: str = "all",
                 on_live: Callable[[Event], None] | None = None):
        """``on_live`` receives a running cell's live events when the executor runs cells in this thread
        (``inline``, the magic); otherwise they are yielded like every other event."""
        self.task, self.executor, self.draft = task, executor, draft
        self.on_live = on_live
        self.judges, self.approver, self.safety = judges, approver, safety
        self.on_cell_done = on_cell_done
        # The data card's builder may register identifiers here (``redactor.register_identifiers``).
        self.redactor = redactor or Redactor()
        self.cell_timeout = cell_timeout
        if skills not in SKILL_TOOLS:
            raise ValueError(f"unknown skills {skills!r}; use one of {', '.join(SKILL_TOOLS)}")
        # A backend sees (and may call) only the skills this run grants.
        withheld = set(ALL_SKILL_TOOLS) - set(SKILL_TOOLS[skills])
        self.schemas = {s["name"]: s for s in load_tool_schemas() if s["name"] not in withheld}
        self.inspection: dict[str, Any] | None = None  # the latest inspect_data result (data card, findings, machine)
        self.metrics: dict[str, Any] = {}
        self.pending_images: list[bytes] = []  # rendered since the last verdict
        # Every findings report a cell made, in order: {"cell", "turn", "scope", "findings"}. A report replaces
        # the earlier ones of its scope ("data", "predictions"): the judge goes on the latest of each.
        self.reports: list[dict[str, Any]] = []
        self.turn = 0  # the model's turn now being carried out (set by the loop): findings say when they came
        self.since_verdict: list[str] = []  # what each cell run since the last verdict gave: an honest "nothing to judge"
        self.conflicts: list[str] = []  # what the request asserts and the data card contradicts (inspect_data)
        self.verdicts: list[dict[str, Any]] = []
        self.disagreements: list[str] = []
        self.errors_seen = 0
        self.skipped_since_verdict: list[str] = []  # cells the user skipped since then: what a judge could not see
        self._usage: list[TokenUsage] = []

    def drain_usage(self) -> list[TokenUsage]:
        """Tokens and money the judges spent since the last call."""
        usage, self._usage = self._usage, []
        return usage

    # ------------------------------------------------------------------ validation
    def problem_with(self, call: ToolCall) -> str | None:
        """Why a tool call cannot be carried out (told to the model), or None."""
        if call.name == NO_CALL:
            return "Your reply contained no tool call. Act through the tools; call finish when done."
        if "__parse_error__" in call.arguments:
            return f"the tool call of your reply is not valid JSON: {str(call.arguments['__parse_error__'])[:300]}"
        if call.name not in self.schemas:
            return f"unknown tool {call.name!r}; available tools: {', '.join(self.schemas)}"
        missing = [k for k in self.schemas[call.name]["input_schema"].get("required", []) if k not in call.arguments]
        if missing:
            return f"{call.name} is missing required argument(s): {', '.join(missing)}"
        if call.name in ("edit_cell", "run_cell", "show_cell", "read_output") \
                and self.draft.get(str(call.arguments["cell_id"])) is None:
            known = ", ".join(c.id for c in self.draft.cells) or "none yet"
            return f"no cell with id {call.arguments['cell_id']!r} (cells: {known})"
        return None

    def dispatch(self, call: ToolCall) -> ToolResult:
        """Carry out a valid call. A tool that breaks (unreadable data) is reported to the model, not raised;
        what ends the run is: a stop at an approval prompt, an unwritable notebook, a dead kernel."""
        try:
            return (yield from getattr(self, f"tool_{call.name}")(**call.arguments))
        except (StopRequested, NotebookWriteError, KernelDied):
            raise
        except Exception as exc:
            # A MedagentError already says, in plain words, which file is at fault and why.
            problem = str(exc) if isinstance(exc, MedagentError) else f"{type(exc).__name__}: {exc}"
            return Observation(quote_untrusted(f"{call.name} failed: {type(exc).__name__}: {exc}", "tool error"),
                               data={"problem": problem}, is_error=True)

    # ------------------------------------------------------------------ tools
    def tool_inspect_data(self, path: str | None = None) -> ToolResult:
        from jupyter_medagent.imaging.datacard import build_data_card
        from jupyter_medagent.judge.quantitative import check_dataset, dataset_convention
        from jupyter_medagent.plan.intent import request_conflicts

        if not self.task.data_dir:
            return Observation("no data folder was given for this task", is_error=True)
        yield from ()  # a tool is a generator even when it causes no event
        try:  # the card is read on the host: only inside the run's data folder
            confined = str(confined_data_folder(path, self.task.data_dir))
            folder = confined if path else self.task.data_dir  # the user's own spelling of their folder
        except DataError as exc:
            return Observation(quote_untrusted(f"inspect_data refused: {exc}", "inspect_data"), is_error=True)
        card = build_data_card(folder)
        self.redactor.register_identifiers(card.identifiers)  # whatever identifying values the card met
        findings = [f.to_dict() for f in check_dataset(card)]
        convention = dataset_convention(card, findings)
        machine = self._machine()
        text = inspection_text(card, findings, convention) + f"\nThe kernel's machine: {machine['describe']}"
        # What the request asserts and the data contradicts: said once here and again with every verdict.
        self.conflicts = request_conflicts(self.task.request, card.to_dict(), convention)
        text += "".join(f"\nRequest and data disagree: {line}" for line in self.conflicts)
        data = {"card": card.to_dict(), "findings": findings, "label_convention": convention,
                "compute": machine["fingerprint"], "data_dir": folder, "conflicts": self.conflicts}
        self.inspection = data
        return Observation(text, data=data)

    def tool_toolkit_reference(self, module: str | None = None, name: str | None = None) -> ToolResult:
        yield from ()
        try:
            return Observation(toolkit_reference(module, name))
        except LookupError as exc:
            return Observation(str(exc), is_error=True)

    def tool_propose_recipe(self) -> ToolResult:
        """The offline planner's Plan for this request and the data card of the last inspect_data (made now if
        the backend has not inspected the data yet)."""
        from jupyter_medagent.plan import ComputeFingerprint, PlanFailed, make_plan, parse_request

        if self.inspection is None:
            inspected = yield from self.tool_inspect_data()
            if inspected.is_error:
                return inspected
        seen = self.inspection
        try:
            plan = make_plan(seen["card"], parse_request(self.task.request), ComputeFingerprint.from_dict(seen["compute"]),
                             data_dir=seen["data_dir"], convention=seen["label_convention"], findings=seen["findings"])
        except PlanFailed as exc:
            return Observation(f"The offline planner has no plan for this request on this data: {exc}", is_error=True)
        # The plan quotes case names and file paths from the data: fenced like the data card.
        return Observation(quote_untrusted(proposal_text(plan), "proposed recipe"),
                           data={"plan": plan.to_dict(), "cells": plan.cells()})

    def _machine(self) -> dict[str, Any]:
        """The compute fingerprint of the kernel's machine; this process's, if the kernel cannot say."""
        from jupyter_medagent.plan.compute import ComputeFingerprint, free_ram_gb, usable_cpu_cores

        result = self.executor.execute(MEASURE_COMPUTE)
        for output in result.outputs:
            if COMPUTE_MIME in output.get("data", {}):
                fingerprint = ComputeFingerprint.from_dict(output["data"][COMPUTE_MIME])
                return {"fingerprint": fingerprint.to_dict(), "describe": fingerprint.describe()}
        fingerprint = ComputeFingerprint("cpu", usable_cpu_cores(), free_ram_gb())
        why = result.error["evalue"] if result.error else "no answer"
        return {"fingerprint": fingerprint.to_dict(),
                "describe": f"{fingerprint.describe()} (assumed: the kernel could not measure itself: {why[:200]})"}

    def tool_add_cell(self, source: str, note: str, run: bool = True) -> ToolResult:
        cell = self.draft.add(source, note)
        yield CellWritten(cell.id, source, note)
        if not run:
            return Observation(f"cell {cell.id} added (not run)", data={"cell_id": cell.id})
        return (yield from self._run(cell))

    def tool_edit_cell(self, cell_id: str, source: str, note: str | None = None, run: bool = True) -> ToolResult:
        cell = self.draft.replace(cell_id, source, note)
        yield CellWritten(cell.id, source, cell.note, replaces=cell.id)
        if not run:
            return Observation(f"cell {cell.id} replaced (not run)", data={"cell_id": cell.id})
        return (yield from self._run(cell))

    def tool_run_cell(self, cell_id: str) -> ToolResult:
        return (yield from self._run(self.draft.get(cell_id)))

    def tool_list_cells(self) -> ToolResult:
        """The notebook as it is now: each cell's id, status, note and size (sources through show_cell)."""
        yield from ()
        if not self.draft.cells:
            return Observation("The notebook has no cells yet.")
        lines = [f"{c.id} [{c.status}] {c.note} ({len(c.source.splitlines())} lines of code, "
                 f"{len(outputs_as_text(c.outputs).splitlines())} lines of output)" for c in self.draft.cells]
        return Observation("Cells, in notebook order (show_cell returns a cell's current source, read_output its "
                           "output):\n" + "\n".join(lines), data={"cells": [c.id for c in self.draft.cells]})

    def tool_show_cell(self, cell_id: str) -> ToolResult:
        """A cell's current source (after every edit), with its note and status."""
        yield from ()
        cell = self.draft.get(str(cell_id))
        text = f"cell {cell.id} [{cell.status}]: {cell.note}\n```python\n{cell.source}\n```"
        return Observation(text, data={"cell_id": cell.id, "source": cell.source})

    def tool_read_output(self, cell_id: str, start: int = 1, end: int | None = None) -> ToolResult:
        """Lines ``start``..``end`` (1-based, inclusive) of the text of a cell's latest outputs."""
        yield from ()
        cell = self.draft.get(str(cell_id))
        lines = outputs_as_text(cell.outputs).split("\n")
        try:
            first, last = max(1, int(start)), min(len(lines), int(end) if end is not None else len(lines))
        except (TypeError, ValueError):
            return Observation("start and end must be whole line numbers", is_error=True)
        if first > last:
            return Observation(f"cell {cell.id}'s output has {len(lines)} line(s); nothing in {start}-{end}",
                               is_error=True)
        shown = cut_lines("\n".join(lines[first - 1:last]), MAX_TEXT, cell_id=cell.id, first_line=first)
        header = f"cell {cell.id} output, lines {first}-{last} of {len(lines)}"
        return Observation(header + "\n" + quote_untrusted(shown, f"output of cell {cell.id}"),
                           data={"cell_id": cell.id, "start": first, "end": last})

    def tool_list_variables(self) -> ToolResult:
        yield from ()
        result = self.executor.execute(LIST_VARIABLES, timeout=self.cell_timeout)
        text = "".join(o.get("text", "") for o in result.outputs if o.get("output_type") == "stream")
        try:
            variables = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return Observation(quote_untrusted(f"could not list variables: {result.error or text[:300]}", "kernel"),
                               is_error=True)
        lines = [f"{v['name']}: {v['type']}" + (f" {v['shape']} {v['dtype']}" if "shape" in v else "") for v in variables]
        return Observation(quote_untrusted("\n".join(lines) or "(no variables)", "kernel variables"),
                           data={"variables": variables})

    def tool_render(self, image: str, label: str | None = None, prediction: str | None = None,
                    title: str | None = None, label_names: str | None = None) -> ToolResult:
        args = [image] + [f"{k}={v}" for k, v in (("label", label), ("prediction", prediction),
                                                   ("label_names", label_names)) if v]
        if title:
            args.append(f"title={title!r}")
        source = f"from jupyter_medagent.imaging import render_montage\n\nrender_montage({', '.join(args)})"
        note = f"Render {title or image} with its contours, to look at the overlay before trusting any number."
        return (yield from self.tool_add_cell(source, note))

    def tool_judge(self, context: str = "") -> ToolResult:
        images = self.pending_images
        current, cleared = self.findings_now()
        findings = self.redact_findings([entry["finding"] for entry in current])
        origins = {(e["finding"].get("case"), e["finding"].get("kind")): e for e in current}
        self.pending_images = []
        since, self.since_verdict = self.since_verdict, []
        skipped, self.skipped_since_verdict = self.skipped_since_verdict, []
        context = self.redactor.scrub(context)
        if not self.reports and not images:  # a judge with nothing to go on must not say "ok"
            reason = "nothing to judge: no cell has reported quality findings (display_findings) and no image was " \
                     "rendered since the last verdict"
            if since:
                reason += "; since then: " + ", ".join(since)
            self.verdicts.append({"verdict": "not_checked", "n_images": 0, "n_findings": 0, "judges": {},
                                  "reason": reason, "turn": self.turn})
            yield Verdict("panel", "not_checked", [], reason=reason)
            text = "\n".join([f"Verdict: not checked: {reason}."] + [f"Request and data disagree: {line}"
                                                                     for line in self.conflicts])
            return Observation(text, data={"verdict": "not_checked", "findings": []})
        verdicts: dict[str, JudgeVerdict] = {}
        unavailable = []
        for judge in self.judges:
            try:
                verdicts[judge.name] = judge.judge(images, findings, context)
            except Exception as exc:  # a model judge that cannot answer abstains; the quantitative one never does
                unavailable.append(f"the {judge.name} judge could not answer ({type(exc).__name__}: {str(exc)[:200]})")
                continue
            self._usage.append(verdicts[judge.name].usage)
        merged, disagreements = merge_verdicts(verdicts)
        if skipped and merged.verdict == "ok":  # what the skipped cells would have shown was not looked at
            reason = (f"cell(s) {', '.join(skipped)} were skipped by you, so what they would have shown was not "
                      f"looked at; the rest ({len(images)} image(s), {len(findings)} finding(s)) raised nothing")
            self.verdicts.append({"verdict": "not_checked", "n_images": len(images), "n_findings": 0,
                                  "judges": {n: v.verdict for n, v in verdicts.items()}, "reason": reason})
            yield Verdict("panel", "not_checked", [], reason=reason)
            return Observation(f"Verdict: not checked: {reason}.", data={"verdict": "not_checked", "findings": []})
        for name, verdict in verdicts.items():
            yield Verdict(name, verdict.verdict, verdict.findings, confidence=verdict.confidence)
        disagreements += unavailable
        self.disagreements += disagreements
        self.verdicts.append({"verdict": merged.verdict, "n_images": len(images), "n_findings": len(merged.findings),
                              "judges": {n: v.verdict for n, v in verdicts.items()}, "turn": self.turn,
                              "cleared": len(cleared)})
        if len(verdicts) > 1:
            yield Verdict("merged", merged.verdict, merged.findings)
        lines = [f"Verdict: {merged.verdict} ({len(images)} new image(s); {len(merged.findings)} finding(s) stand now"
                 f"{f', {len(cleared)} earlier one(s) cleared by a later check' if cleared else ''})"]
        if not since and not images:
            lines.append("No cell ran a check since the last verdict: this is the same state judged again.")
        # Case and label names come from the data; judges' words may quote them: fenced, never obeyed.
        details = [f"- {f.get('case')}: {f.get('kind')}: {f.get('message')}" + _origin(origins.get((f.get("case"), f.get("kind"))))
                   for f in merged.findings]
        details += [f"- cleared: {e['finding'].get('case')}: {e['finding'].get('kind')}{_origin(e)}; not found again "
                    f"by cell {e['cleared_by']} (turn {e['cleared_turn']})" for e in cleared]
        details += [f"Judges: {d}" for d in disagreements]
        if details:
            lines.append(quote_untrusted("\n".join(details), "judge findings"))
        lines += [f"Request and data disagree: {line}" for line in self.conflicts]
        return Observation("\n".join(lines), data={"verdict": merged.verdict, "findings": merged.findings,
                                                   "cleared": [e["finding"] for e in cleared]})

    def findings_now(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The findings that stand (the latest report of each scope) and those an earlier report of the same
        scope made that the latest one no longer has (cleared), each as {"finding", "cell", "turn"} (the cell and the
        model's turn that reported it; a cleared one also "cleared_by", "cleared_turn")."""
        latest: dict[str, dict[str, Any]] = {}
        for report in self.reports:
            latest[report["scope"]] = report
        current, cleared, seen = [], [], set()
        for scope, report in latest.items():
            now = {(f.get("case"), f.get("kind")) for f in report["findings"]}
            current += [{"finding": f, "cell": report["cell"], "turn": report["turn"]} for f in report["findings"]]
            for earlier in self.reports:
                if earlier is report or earlier["scope"] != scope:
                    continue
                for f in earlier["findings"]:
                    key = (scope, f.get("case"), f.get("kind"))
                    if key[1:] not in now and key not in seen:
                        seen.add(key)
                        cleared.append({"finding": f, "cell": earlier["cell"], "turn": earlier["turn"],
                                        "cleared_by": report["cell"], "cleared_turn": report["turn"]})
        return current, cleared

    def redact_findings(self, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Findings as judges see them: every text field scrubbed (a model judge sends them on)."""
        return [{k: self.redactor.scrub(v) if isinstance(v, str) else v for k, v in f.items()} for f in findings]

    def tool_finish(self, status: str, summary: str) -> ToolResult:
        yield from ()
        return Observation("finishing", data={"finish": {"status": status, "summary": summary}})

    # ------------------------------------------------------------------ running a cell
    def _run(self, cell: DraftCell) -> ToolResult:
        concerns = self.safety(cell.source) if self.safety is not None else []
        if concerns and self.approver is None:
            cell.status = "error"
            return Observation("The safety gate refused this cell; nothing was run. Choose another way:\n- "
                               + "\n- ".join(concerns), data={"cell_id": cell.id, "refused": concerns}, is_error=True)
        if self.approver is not None:  # approve-each-cell: the user sees the gate's concerns and decides
            yield ApprovalRequest(cell.id, cell.source, concerns)
            decision, source = self.approver(cell.id, cell.source, concerns)
            if decision == "stop":
                raise StopRequested()
            if decision == "skip":
                cell.status = "skipped"
                self.since_verdict.append(f"cell {cell.id} was skipped by the user")
                self.skipped_since_verdict.append(cell.id)
                yield CellSkipped(cell.id)
                if self.on_cell_done:
                    self.on_cell_done(cell)
                return Observation(f"the user skipped cell {cell.id}; it was not run, so nothing it would have made "
                                   "exists", data={"cell_id": cell.id, "skipped": True})
            if decision == "edit" and source != cell.source:
                cell.source, cell.edited_by_user = source, True
                cell.user_edits += 1
                yield CellWritten(cell.id, source, cell.note, replaces=cell.id, by_user=True)
        result = yield from self._execute(cell)
        cell.outputs, cell.duration_s = result.outputs, result.duration_s
        cell.status = "ok" if result.ok else "error"
        self.errors_seen += not result.ok
        yield CellExecuted(cell.id, clean_outputs(result.outputs), result.error, result.duration_s)  # for pages
        images = self._collect(cell, result)
        for png in images:
            yield Render(cell.id, png, cell.note)
        if self.on_cell_done:
            self.on_cell_done(cell)
        return self._observe(cell, result, images)

    def _execute(self, cell: DraftCell) -> Generator[Event, None, ExecutionResult]:
        """Run the cell, its outputs shown as they arrive. An inline executor runs it in this thread and live
        events go to ``on_live``; any other runs in a worker thread while this one yields them."""
        live = LiveOutputs(cell.id)
        if self.executor.inline:
            def forward(outputs):
                for event in live.events(outputs):
                    if self.on_live is not None:
                        self.on_live(event)
            return self.executor.execute(cell.source, timeout=self.cell_timeout, on_output=forward)
        return (yield from in_background(
            lambda report: self.executor.execute(cell.source, timeout=self.cell_timeout, on_output=report),
            live.events, name=f"medagent-cell-{cell.id}", newest_only=True))

    def restart_kernel(self, death: str) -> Generator[Event, None, Observation]:
        """A fresh kernel in place of the dead one, with every kept cell run again in order."""
        kept = self.draft.surviving()
        yield Message(f"{death}; restarting it and replaying the {len(kept)} kept cell(s).")
        failed = self.executor.restart_and_replay([cell.source for cell in kept], timeout=self.cell_timeout)
        if failed is not None:
            index, result = failed
            kept[index].status = "error"
            return Observation(f"{death}. A fresh kernel was started, but replaying cell {kept[index].id} failed: "
                               f"{result.error['ename']}: {result.error['evalue']}", is_error=True)
        return Observation(f"{death}. A fresh kernel was started and the kept cells "
                           f"({', '.join(c.id for c in kept) or 'none'}) were run again; "
                           "the cell that was running when it died did not finish.", is_error=True)

    def _collect(self, cell: DraftCell, result: ExecutionResult) -> list[bytes]:
        images, gave = [], []
        for output in result.outputs:
            data = output.get("data", {})
            if "image/png" in data:
                images.append(base64.b64decode(data["image/png"]) if isinstance(data["image/png"], str) else data["image/png"])
            if FINDINGS_MIME in data:
                report = data[FINDINGS_MIME]
                self.reports.append({"cell": cell.id, "turn": self.turn, "scope": str(report.get("scope") or "data"),
                                     "findings": list(report.get("findings", []))})
                gave.append(f"{len(self.reports[-1]['findings'])} finding(s)")
            if METRICS_MIME in data:
                self.metrics.update(data[METRICS_MIME])
                gave.append("metrics (not a check)")
        if images:
            gave.append(f"{len(images)} image(s)")
        self.pending_images += images
        self.since_verdict.append(f"cell {cell.id} {'ran' if result.ok else 'FAILED'}"
                                  f"{' (' + ', '.join(gave) + ')' if gave else ' (no check, no image)'}")
        return images

    def _observe(self, cell: DraftCell, result: ExecutionResult, images: list[bytes]) -> Observation:
        shown = cut_lines(outputs_as_text(result.outputs).strip(), MAX_TEXT, cell_id=cell.id)
        header = f"cell {cell.id} {'ran' if result.ok else 'FAILED'} in {result.duration_s:.1f} s"
        if images:
            header += f"; {len(images)} image(s) rendered, attached to this result"
        parts = [header]
        if shown:
            parts.append(quote_untrusted(shown, f"output of cell {cell.id}"))
        if result.error:  # a traceback quotes file names and data: fenced like any output
            trace = "".join(result.error["traceback"][-3:])[-1500:] or f"{result.error['ename']}: {result.error['evalue']}"
            parts.append(quote_untrusted(trace, f"error of cell {cell.id}"))
        data = {"cell_id": cell.id, "ok": result.ok, "error": result.error, "metrics": dict(self.metrics),
                "n_images": len(images)}
        if cell.edited_by_user:  # what the user made of the cell: a backend that plans ahead reads its values
            data.update(edited_by_user=True, source=cell.source)
        return Observation("\n".join(parts), images=images, data=data, is_error=not result.ok)


def _origin(entry: dict[str, Any] | None) -> str:
    """Where a finding came from; a model judge's own findings come from no cell."""
    return f" [reported by cell {entry['cell']} (turn {entry['turn']})]" if entry else " [the judge's own]"
