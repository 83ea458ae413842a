"""The Jupyter AI persona drives the same server-side run as the sidebar and answers in the chat."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from time import time

import pytest

pytest.importorskip("jupyter_ai_persona_manager")

from jupyterlab_chat.models import Message  # noqa: E402
from traitlets.config import Configurable  # noqa: E402

from jupyter_medagent.persona import MedAgentPersona  # noqa: E402


class Chat:
    """The slice of jupyterlab_chat's YChat a persona uses, recording what it says."""

    def __init__(self, path):
        self.path, self.messages = path, {}

    def set_user(self, user):
        pass

    def get_id(self):
        return "chat-1"

    def get_path(self):
        return self.path

    def add_message(self, new):
        key = f"m{len(self.messages)}"
        self.messages[key] = new.body
        return key

    def update_message(self, message, append=False, trigger_actions=None):
        self.messages[message.id] = (self.messages[message.id] + message.body) if append else message.body

    def get_message(self, key):
        return Message(id=key, body=self.messages[key], time=time(), sender="medagent")

    def broadcast_writing_status(self, *args, **kwargs):
        pass


class Extension(Configurable):
    def __init__(self, serverapp):
        super().__init__()
        self.serverapp = serverapp


class Manager(Configurable):
    """Stands in for jupyter_ai_persona_manager's PersonaManager: chat, server extension, chat path."""

    def __init__(self, serverapp, chat):
        super().__init__(parent=Extension(serverapp))
        self.chat, self.event_logger = chat, None

    def get_chat_path(self, relative=False):
        return self.chat.path


def persona(serverapp, chat_path="studies/cine.chat"):
    chat = Chat(chat_path)
    return MedAgentPersona(parent=Manager(serverapp, chat), chat=chat), chat


def test_the_persona_is_registered_for_jupyter_ai():
    found = {ep.name: ep.value for ep in entry_points(group="jupyter_ai.personas")}
    assert found.get("medagent") == "jupyter_medagent.persona:MedAgentPersona"


async def test_a_chat_request_runs_the_agent_and_reports_in_the_chat(jp_serverapp, jp_root_dir):
    from jupyter_medagent.synth.replicas import synth_cardiac

    synth_cardiac(jp_root_dir / "studies" / "cine", cases=2, seed=1, pitfalls=["orientation_flip"])
    medagent, chat = persona(jp_serverapp)
    assert medagent.defaults.name == "MedAgent"
    await medagent.process_message(Message(
        id="u1", time=time(), sender="user",
        body="@MedAgent Compute the LV volumes and ejection fraction of each patient from the given labels. --data cine"))
    said = "".join(chat.messages.values())
    assert "Plan:" in said and "**Finished: solved**" in said
    # The verdicts with their findings, the numbers asked for, and the notebook as a link that opens it.
    assert re.search(r"\*\*Judge \(quantitative\): flag — \d+ finding\(s\): orientation_flip\*\*\n- patient\d+_E[DS]: "
                     r"orientation_flip", said)
    assert "**Ejection fraction per patient**" in said and re.search(r"\| patient001 \| \d+\.\d \| given labels \|", said)
    assert re.search(r"Notebook: \[cine-medagent\.ipynb\]\(/\S*lab/tree/studies/cine-medagent\.ipynb\)", said)
    assert (jp_root_dir / "studies" / "cine-medagent.ipynb").exists()  # next to the chat, named after it
    assert not jp_serverapp.kernel_manager.list_kernel_ids()  # its kernel is shut down afterwards


async def test_without_a_data_folder_it_says_how_to_ask(jp_serverapp):
    medagent, chat = persona(jp_serverapp)
    await medagent.process_message(Message(id="u1", time=time(), sender="user", body="@MedAgent segment my scans"))
    assert "--data" in list(chat.messages.values())[0]
    medagent, chat = persona(jp_serverapp)
    await medagent.process_message(Message(id="u2", time=time(), sender="user", body="@MedAgent segment --data nowhere"))
    assert "I could not start" in list(chat.messages.values())[0] and "nowhere" in list(chat.messages.values())[0]


def test_the_persona_works_with_the_installed_persona_manager():
    """0.2.2 (what jupyter-ai 3.2.0 installs) and 0.3.0 build a persona the same way; anything else is untested."""
    from importlib.metadata import version

    assert version("jupyter_ai_persona_manager").startswith(("0.2.", "0.3."))
    medagent, _ = persona(None)
    assert medagent.name == "MedAgent" and medagent.id == "jupyter-ai-personas::jupyter_medagent::MedAgentPersona"


@pytest.mark.slow
async def test_the_server_answers_while_a_chat_run_trains_and_the_chats_stop_stops_it(jp_serverapp, jp_root_dir,
                                                                                      jp_fetch):
    import asyncio

    from jupyter_medagent.synth.replicas import synth_cardiac

    synth_cardiac(jp_root_dir / "studies" / "cine", cases=4, seed=4)
    medagent, chat = persona(jp_serverapp)
    reply = asyncio.ensure_future(medagent.process_message(Message(
        id="u1", time=time(), sender="user",
        body="@MedAgent segment the LV, myocardium and RV and report the EF per patient --data cine")))
    runs = jp_serverapp.web_app.settings["medagent_runs"]
    started = time()
    while not any(e["kind"] == "progress" and e["what"] == "training" for r in runs.runs.values() for e in r.events):
        assert not reply.done() and time() - started < 600, "".join(chat.messages.values())
        await asyncio.sleep(0.5)
    waits = []
    for _ in range(5):  # while the model trains in the run's kernel
        asked = time()
        response = await jp_fetch("api", "status", request_timeout=5)
        waits.append(time() - asked)
        assert response.code == 200
        await asyncio.sleep(0.3)
    assert max(waits) < 1.0, waits
    await asyncio.sleep(1.0)
    shown = "".join(chat.messages.values())
    progress = [e for r in runs.runs.values() for e in r.events if e["kind"] == "progress" and e["what"] == "training"]
    assert (progress[0]["text"] or "training:") in shown  # the training's progress reaches the chat
    await medagent.cancel_response()  # the chat's Stop button
    await asyncio.wait_for(reply, 60)
    said = "".join(chat.messages.values())
    assert "**Finished: stopped**" in said, said[-2000:]
    assert all(run.done for run in runs.runs.values())
