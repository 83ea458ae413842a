"""``%%medagent``: run the agent inside the user's own kernel.

Cells run in-process, so every variable they make stays in the user's namespace: the offline backend's
(its code is ours), and any backend's in the "Python 3 (medagent sandbox)" kernel. A model backend's
cells in any other kernel run in a kernel of the run's own (sandboxed where bubblewrap works; else
each waits for approval), never in the user's. In JupyterLab the
MedAgent extension does the rest, as it does for the sidebar: the magic shows its run as a
``RUN_MIME`` output (the extension draws the same timeline as the sidebar: thumbnails, verdict badges,
progress) and sends every event on the comm target ``COMM_TARGET``; the extension feeds them to that
timeline and mirrors the agent's cells, with their outputs as they arrive, into the notebook below the
magic's cell. Other front ends see the same run as a plain-text log. When the run ends, the output keeps
the whole timeline (thumbnails downsized), so it still shows after the notebook is reopened.

The refined notebook is named after the user's (``analysis-medagent.ipynb`` next to ``analysis.ipynb``)
and never replaces an existing file.
"""

from __future__ import annotations

import argparse
import base64
import html
import shlex
import threading
import time
import uuid
from pathlib import Path

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import HTML, display

from jupyter_medagent.agent.approval import ask_on_console
from jupyter_medagent.agent.narrate import describe
from jupyter_medagent.contracts.options import add_arguments, from_arguments, usage
from jupyter_medagent.contracts.mime import RUN_MIME

COMM_TARGET = "jupyter_medagent.events"
THUMBNAIL_SIDE = 480  # pixels: what the timeline keeps of a rendered montage once the run is over
LOG_EVERY_S = 1.0  # the plain-text log (front ends without the extension) is refreshed at most this often
TRANSIENT = ("cell_output", "progress", "message_delta")  # live-only events, not kept in the finished timeline


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%medagent", add_help=False)
    parser.add_argument("--data")
    parser.add_argument("--out", help="refined notebook path (default: NAME-medagent.ipynb next to this notebook)")
    parser.add_argument("--approve", action="store_true", help="same as --safety approve")
    add_arguments(parser)
    return parser


def _say(text: str) -> None:
    """A one-line message for the user: rich in a notebook, plain in a terminal."""
    display({"text/html": f"<b>MedAgent</b>: {html.escape(text)}", "text/plain": f"MedAgent: {text}"}, raw=True)


def notebook_of(shell) -> Path | None:
    """The notebook this kernel serves: ipykernel sets ``__session__`` from JupyterLab's session path, VS Code
    sets ``__vsc_ipynb_file__``. None where the front end does not say (a terminal, a plain nbclient run)."""
    for name in ("__session__", "__vsc_ipynb_file__"):
        session = shell.user_ns.get(name)
        if isinstance(session, str) and session.endswith(".ipynb"):
            path = Path(session)
            return path if path.is_absolute() else Path.cwd() / path.name
    return None


def default_notebook(shell) -> str:
    """The refined notebook's name: after the user's notebook, as the sidebar names it."""
    from jupyter_medagent.session import refined_name

    return refined_name(notebook_of(shell))


def kept_event(event: dict) -> dict:
    """An event as the finished timeline keeps it: rendered montages as thumbnails."""
    if event.get("kind") == "render" and event.get("png"):
        from jupyter_medagent.imaging.render import downsample

        small = downsample(base64.b64decode(event["png"]), THUMBNAIL_SIDE)
        return {**event, "png": base64.b64encode(small).decode("ascii")}
    return event


class RunView:
    """The run under the magic's cell: live events to the JupyterLab extension over a comm, a plain-text
    log for other front ends, and at the end the whole timeline in the output itself."""

    def __init__(self, shell, run_id: str, notebook: str | None = None):
        """``notebook``: where the refined notebook will be written, said by a page that can no longer follow."""
        self.run_id = run_id
        self.notebook = notebook
        self.lines: list[str] = []
        self.kept: list[dict] = []
        self.seq = 0
        self._logged_at = 0.0
        self._lock = threading.Lock()  # a cell's background threads print too: one event at a time, seq in order
        self.rich = getattr(shell, "kernel", None) is not None  # a kernel with a front end, not a terminal
        self.handle = display(self._bundle(), display_id=True, raw=True) if self.rich else None
        self.comm = self._open_comm(shell) if self.rich else None

    def _open_comm(self, shell):
        try:
            from comm import create_comm

            notebook = notebook_of(shell)
            return create_comm(target_name=COMM_TARGET, data={"run_id": self.run_id,
                                                                "notebook": str(notebook) if notebook else None})
        except Exception:  # no front end listening: the plain-text log still shows the run
            return None

    def _bundle(self, done: bool = False) -> dict:
        log = "\n".join(self.lines) or "MedAgent: starting…"
        run = {"run_id": self.run_id, "done": done, "notebook": self.notebook}
        if done:
            run["events"] = self.kept
        return {RUN_MIME: run, "text/plain": log,
                "text/html": f"<pre class='medagent-log'>{html.escape(log)}</pre>"}

    def add(self, event) -> None:
        with self._lock:
            self._add(event)

    def _add(self, event) -> None:
        data = event.to_json()
        data["seq"] = self.seq
        self.seq += 1
        if self.comm is not None:
            self.comm.send({"run_id": self.run_id, "event": data})
        if data["kind"] not in TRANSIENT:
            self.kept.append(kept_event(data))
        line = describe(event) if data["kind"] not in TRANSIENT else None
        if not line:
            return
        self.lines.append(line)
        if not self.rich:
            print(line, flush=True)
        elif time.monotonic() - self._logged_at >= LOG_EVERY_S:
            self._logged_at = time.monotonic()
            self.handle.update(self._bundle(), raw=True)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.update(self._bundle(done=True), raw=True)
        if self.comm is not None:
            self.comm.close()


@magics_class
class MedagentMagics(Magics):
    @cell_magic
    def medagent(self, line: str, cell: str):
        from jupyter_medagent.contracts.errors import MedagentError
        from jupyter_medagent.isolation.kernelspec import in_sandbox_kernel
        from jupyter_medagent.kernel import InProcessExecutor
        from jupyter_medagent.session import RunSetup, build_agent

        try:
            args = _parser().parse_args(shlex.split(line))
        except SystemExit:
            _say(f"options are --data DIR, --out PATH, --approve, {usage()}")
            return
        if not cell.strip():
            _say("write your request in the cell body, below the %%medagent line.")
            return
        notebook = notebook_of(self.shell)
        base_dir = notebook.parent if notebook else Path.cwd()
        view: RunView | None = None
        try:
            options = from_arguments(args, **({"safety": "approve"} if args.approve else {}))
            setup = RunSetup(cell, args.data, base_dir, args.out, options)
            agent = build_agent(setup, lambda isolation: InProcessExecutor(
                self.shell, guard=isolation.guard_policy(kernel_in_sandbox=in_sandbox_kernel())),
                                approver=ask_on_console, user_kernel=True, user_kernel_sandboxed=in_sandbox_kernel(),
                                default_notebook=default_notebook(self.shell), on_live=lambda e: view.add(e))
        except MedagentError as exc:
            _say(str(exc))
            return
        planned = Path(agent.notebook_path)
        view = RunView(self.shell, uuid.uuid4().hex[:12],
                       planned.relative_to(base_dir).as_posix() if planned.is_relative_to(base_dir) else str(planned))
        finished = None
        try:
            try:
                for event in agent.run():
                    view.add(event)
                    finished = event if event.kind == "finished" else finished
            except KeyboardInterrupt:  # the kernel's stop button: end the run, keep the partial notebook
                for event in agent.abandon("interrupted by the user"):
                    view.add(event)
                    finished = event
        finally:
            view.close()
            agent.executor.close()
        if finished and finished.notebook:
            path = Path(finished.notebook)
            link = html.escape(path.relative_to(base_dir).as_posix() if path.is_relative_to(base_dir) else str(path))
            display(HTML(f"<b>MedAgent</b>: {html.escape(finished.status)} — {html.escape(finished.reason)}. "
                         f"Refined notebook: <a href='{link}' target='_blank'>{link}</a>"))
        return None


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(MedagentMagics)
