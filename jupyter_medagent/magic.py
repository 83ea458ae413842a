"""``%%medagent``: run the agent inside the user's own kernel.

Cells run in-process, so every variable they make stays in the user's namespace.
Progress shows as a live ipywidgets timeline; every event is also published on
the comm target ``jupyter_medagent.events`` so the JupyterLab extension can insert
the cells into the open notebook. Without it, the refined notebook is written
next to the current one and linked.
"""

from __future__ import annotations

import argparse
import html
import shlex
from pathlib import Path

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import HTML, display

from jupyter_medagent.agent.approval import ask_on_console
from jupyter_medagent.agent.narrate import describe

COMM_TARGET = "jupyter_medagent.events"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%medagent", add_help=False)
    parser.add_argument("--data")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--vlm-judge", default=None)
    parser.add_argument("--max-cost", type=float, default=None)
    parser.add_argument("--max-steps", type=int, default=80)
    parser.add_argument("--approve", action="store_true", help="same as --safety approve")
    parser.add_argument("--safety", default=None, choices=("enforce", "approve", "off"))
    parser.add_argument("--isolation", default="auto", choices=("auto", "sandbox", "guard", "off"),
                        help="the runtime guard in this kernel (off: none) and how the verification re-run's kernel "
                             "is isolated (auto: sandboxed where bubblewrap works)")
    parser.add_argument("--cell-timeout", type=float, default=None)
    parser.add_argument("--out", help="refined notebook path (default: medagent-<n>.ipynb next to this notebook)")
    return parser


def _say(text: str) -> None:
    """A one-line message for the user: rich in a notebook, plain in a terminal."""
    display({"text/html": f"<b>MedAgent</b>: {html.escape(text)}", "text/plain": f"MedAgent: {text}"}, raw=True)


class Timeline:
    """The live view: one line per event, plus a status bar with tokens and money."""

    def __init__(self):
        import ipywidgets as widgets

        self.status = widgets.HTML("<b>MedAgent</b>: starting…")
        self.log = widgets.Output(layout={"max_height": "320px", "overflow": "auto", "border": "1px solid #ddd"})
        self.box = widgets.VBox([self.status, self.log])
        self.tokens, self.cost = 0, 0.0

    def show(self) -> None:
        display(self.box)

    def add(self, event) -> None:
        if event.kind == "usage":
            self.tokens, self.cost = event.total_tokens, event.total_cost_usd
        line = describe(event)
        if line:
            with self.log:
                print(line)
        self.status.value = (f"<b>MedAgent</b>: {html.escape(event.kind.replace('_', ' '))} · "
                             f"{self.tokens} tokens · ${self.cost:.4f}")


@magics_class
class MedagentMagics(Magics):
    @cell_magic
    def medagent(self, line: str, cell: str):
        from jupyter_medagent.errors import MedagentError
        from jupyter_medagent.kernel import InProcessExecutor
        from jupyter_medagent.session import RunOptions, build_agent

        try:
            args = _parser().parse_args(shlex.split(line))
        except SystemExit:
            _say("options are --data DIR, --backend SELECTOR, --vlm-judge SELECTOR, --max-cost USD, --max-steps N, "
                 "--approve, --safety enforce|approve|off, --isolation auto|sandbox|guard|off, --cell-timeout S, "
                 "--out PATH")
            return
        if not cell.strip():
            _say("write your request in the cell body, below the %%medagent line.")
            return
        options = RunOptions(cell, args.data, Path.cwd(), args.out, args.backend, args.vlm_judge, args.max_steps,
                             args.max_cost, "approve" if args.approve else args.safety, isolation=args.isolation,
                             cell_timeout=args.cell_timeout)
        try:
            agent = build_agent(options, lambda isolation: InProcessExecutor(self.shell, guard=isolation.guard_policy()),
                                approver=ask_on_console, user_kernel=True)
        except MedagentError as exc:
            _say(str(exc))
            return
        timeline = Timeline()
        timeline.show()
        comm = _open_comm()
        finished = None
        try:
            for event in agent.run():
                timeline.add(event)
                if comm is not None:
                    comm.send(event.to_json())
                finished = event if event.kind == "finished" else finished
        except KeyboardInterrupt:
            agent.stop()
            _say("interrupted; the partial notebook is kept.")
        if finished and finished.notebook:
            link = html.escape(str(Path(finished.notebook).relative_to(Path.cwd())
                                   if Path(finished.notebook).is_relative_to(Path.cwd()) else finished.notebook))
            display(HTML(f"<b>MedAgent</b>: {html.escape(finished.status)} — {html.escape(finished.reason)}. "
                         f"Refined notebook: <a href='{link}' target='_blank'>{link}</a>"))
        return None


def _open_comm():
    """A comm to the JupyterLab extension, when the front end is JupyterLab; None elsewhere."""
    try:
        from comm import create_comm

        return create_comm(target_name=COMM_TARGET)
    except Exception:  # a terminal IPython has no front end to talk to
        return None


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(MedagentMagics)
