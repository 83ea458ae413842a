"""The MedAgent persona for Jupyter AI 3's chat (entry point ``jupyter_ai.personas``).

Works with jupyter-ai-persona-manager 0.2.2 and 0.3.0 (Jupyter AI 3.2): both construct a persona as
``Persona(parent=manager, chat=chat, ...)`` and call ``process_message`` and, for the chat's Stop button,
``cancel_response``. A chat message such as ``@MedAgent segment the LV, myocardium and RV --data cine/``
starts the same server-side run the sidebar starts (``server/runs.py``), isolated: in a sandboxed kernel of
its own next to the chat file, and streams one line per event into the chat (training progress every
``PROGRESS_EVERY_S``); the refined notebook is linked at the end. The run works in a thread of its own;
this coroutine sleeps until the run has news, so the server's event loop stays free.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from collections.abc import AsyncIterator
from urllib.parse import quote

from jupyter_ai_persona_manager import BasePersona, PersonaDefaults
from jupyterlab_chat.models import Message

from jupyter_medagent.agent.narrate import describe
from jupyter_medagent.contracts.options import RunOptions, add_arguments, from_arguments, usage
from jupyter_medagent.contracts.errors import ConfigError

FINDINGS_SHOWN = 8  # per verdict in the chat; the notebook has them all
PROGRESS_EVERY_S = 20.0  # a training's progress line in the chat at most this often (and when it ends)

AVATAR = Path(__file__).parent / "avatar.svg"
USAGE = ("Ask me for an imaging pipeline and name the data folder, e.g. `@MedAgent segment the LV, myocardium "
         f"and RV and report the EF --data cine/` (options: `{usage()}`).")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="@MedAgent", add_help=False, allow_abbrev=False)
    parser.add_argument("words", nargs="*")
    parser.add_argument("--data")
    add_arguments(parser)
    return parser


def parse_request(text: str) -> tuple[str, str | None, RunOptions]:
    """The request in plain words, the data folder and the run options written among them (``--data cine/
    --max-steps 40``). Raises ValueError naming an option it cannot read."""
    text = text.replace("\u00a0", " ")
    try:
        words = shlex.split(text, posix=True)
    except ValueError:  # an apostrophe or an unbalanced quote in the request: plain words
        words = text.split()
    args = _parser().parse_intermixed_args([w for w in words if not w.startswith("@")])
    try:
        options = from_arguments(args)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return " ".join(args.words), args.data, options


class MedAgentPersona(BasePersona):
    @property
    def defaults(self) -> PersonaDefaults:
        return PersonaDefaults(
            name="MedAgent",
            description="Builds, runs, looks at and verifies medical-image-analysis pipelines.",
            avatar_path=str(AVATAR),
            system_prompt="MedAgent drives jupyter_medagent's agent loop; its prompts live in jupyter_medagent/prompts.",
        )

    def _runs(self):
        serverapp = self.parent.parent.serverapp  # persona -> PersonaManager -> its server extension
        return serverapp, serverapp.web_app.settings["medagent_runs"]

    async def process_message(self, message: Message) -> None:
        from jupyter_medagent.server.runs import RunError, RunRequest

        try:
            request, data, options = parse_request(message.body)
        except ValueError as exc:
            self.send_message(f"I could not read the options: {exc}. {USAGE}")
            return
        if not request or not data:
            self.send_message(USAGE)
            return
        serverapp, runs = self._runs()
        chat = Path(self.get_chat_path(relative=True))
        spec = RunRequest(request, data, None, (chat.parent / f"{chat.stem}.ipynb").as_posix(), isolated=True,
                          options=options)
        try:
            run, _ = await runs.start(spec)
        except RunError as exc:
            self.send_message(f"I could not start: {exc}")
            return
        self._run = run
        try:
            await self.stream_message(self._narrate(runs, run, serverapp.base_url))
        finally:  # the reply was cancelled (chat closed, server stopping): the run does not go on unseen
            if not run.done:
                run.stop()
            self._run = None

    async def cancel_response(self) -> None:
        """The chat's Stop button: the run stops (its cell is interrupted) and the chat says so."""
        run = getattr(self, "_run", None)
        if run is not None and not run.done:
            run.stop()

    async def _narrate(self, runs, run, base_url: str) -> AsyncIterator[str]:
        seen = shown = 0
        progress_at = 0.0
        while not (run.done and seen >= len(run.events)):
            await runs.wait_for(run, seen, 30.0)
            seen = len(run.events)
            for event in run.objects[shown:]:
                if event.kind == "progress":
                    if event.done < event.total and time.monotonic() - progress_at < PROGRESS_EVERY_S:
                        continue
                    progress_at = time.monotonic()
                text = chat_text(event, runs.root, base_url)
                if text:
                    yield text + "\n\n"
            shown = len(run.objects)
        if not any(event.kind == "finished" for event in run.objects):  # the run's thread itself failed
            yield f"**Finished: {run.status}** — {run.events[-1].get('reason', 'the run ended')}\n\n"


def chat_text(event, root: Path, base_url: str) -> str | None:
    """Markdown for one event in the chat: verdicts with their findings, the results' numbers, the notebook
    as a link that opens it in JupyterLab."""
    from jupyter_medagent.server.runs import api_path as server_path

    if event.kind in ("usage", "message_delta", "cell_output"):
        return None
    line = describe(event)
    if event.kind == "verdict" and event.findings:
        listed = [f"- {f.get('case') or 'data'}: {f.get('kind')}" + (f" — {f['message']}" if f.get("message") else "")
                  for f in event.findings[:FINDINGS_SHOWN]]
        more = len(event.findings) - FINDINGS_SHOWN
        return "\n".join([f"**{line}**"] + listed + ([f"- … and {more} more (see the notebook)"] if more > 0 else []))
    if event.kind == "finished" and event.notebook:
        api_path = server_path(event.notebook, root)
        name = Path(api_path).name
        url = f"{base_url.rstrip('/')}/lab/tree/{quote(api_path)}"
        return f"**Finished: {event.status}** — {event.reason}. Notebook: [{name}]({url})"
    return line
