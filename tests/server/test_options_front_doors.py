"""Every run option reaches ``session.build_agent`` through every front door: the CLI, the %%medagent magic, the
server's API, the Jupyter AI persona and the sidebar's settings (schema/plugin.json)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from time import time

import jsonschema
import pytest

from jupyter_medagent.contracts.options import RunOptions, fields
from jupyter_medagent.contracts.errors import ConfigError

GATEWAY = "http://127.0.0.1:9/gateway"
# A value other than the default for every option, and the same values as a user types them on a command line.
CHOSEN = {"backend": "openai:test-model@http://127.0.0.1:9/v1", "vlm_judge": "anthropic:claude-test",
          "max_steps": 7, "max_cost": 1.5, "accept": ["dice_mean>=0.8", "ef_abs_error<=4"], "safety": "off",
          "isolation": "guard", "cell_timeout": 12.5, "on_kernel_death": "restart", "kernel_memory": 2048,
          "kernel_cpu": 600, "verify": False, "skills": "reference", "kernel_gateway": GATEWAY}
WORDS = ["--backend", "openai:test-model@http://127.0.0.1:9/v1", "--vlm-judge", "anthropic:claude-test",
         "--max-steps", "7", "--max-cost", "1.5", "--accept", "dice_mean>=0.8", "--accept", "ef_abs_error<=4",
         "--safety", "off", "--isolation", "guard", "--cell-timeout", "12.5", "--on-kernel-death", "restart",
         "--kernel-memory", "2048", "--kernel-cpu", "600", "--no-verify", "--skills", "reference",
         "--kernel-gateway", GATEWAY]
SCHEMA = Path(__file__).resolve().parents[2] / "labextension" / "schema" / "plugin.json"


@pytest.fixture
def received(monkeypatch):
    """What build_agent is given, by every front door; it then refuses, as it does for a bad option."""
    got = []

    def build_agent(setup, make_executor, **kwargs):
        got.append(setup.options)
        raise ConfigError("options received")

    monkeypatch.setattr("jupyter_medagent.session.build_agent", build_agent)
    return got


def test_the_chosen_values_cover_every_option_and_none_is_a_default():
    default = RunOptions()
    assert set(CHOSEN) == {spec.name for spec in fields()}
    assert [name for name, value in CHOSEN.items() if getattr(default, name) == value] == []


def test_the_cli_passes_every_option(received, tmp_path, monkeypatch):
    from jupyter_medagent.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["run", "Count the scans.", "--data", str(tmp_path), *WORDS]) == 2
    assert received == [RunOptions(**CHOSEN)]


def test_the_magic_passes_every_option(received, tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_medagent")
    shell.run_cell_magic("medagent", shlex.join(["--data", str(tmp_path), *WORDS]), "Count the scans.")
    assert received == [RunOptions(**CHOSEN)]


async def test_the_server_api_passes_every_option(received, api):
    code, reply = await api("runs", body={"request": "Count the scans.", "notebook_path": "a.ipynb", "isolated": True,
                                          **CHOSEN})
    assert code == 400 and reply["message"] == "options received"
    assert received == [RunOptions(**CHOSEN)]


async def test_the_persona_passes_every_option(received, jp_serverapp):
    pytest.importorskip("jupyter_ai_persona_manager")
    from jupyterlab_chat.models import Message

    from tests.server.test_persona import persona

    medagent, chat = persona(jp_serverapp)
    await medagent.process_message(Message(id="u1", time=time(), sender="user",
                                           body=f"@MedAgent Count the scans. --data cine {shlex.join(WORDS)}"))
    assert "options received" in list(chat.messages.values())[0]
    assert received == [RunOptions(**CHOSEN)]


async def test_the_sidebar_settings_pass_every_option(received, api):
    """The settings registry accepts every chosen value (the committed schema), and the body the sidebar posts,
    its saved settings spread in beside the fields of its own (labextension/src/sidebar.ts), gives them all."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(CHOSEN, schema)
    assert {name: prop["default"] for name, prop in schema["properties"].items()} == dataclasses.asdict(RunOptions())
    body = {**CHOSEN, "request": "Count the scans.", "data_dir": "data", "kernel_id": None, "notebook_path": "a.ipynb",
            "mode": "auto", "isolated": True}
    code, reply = await api("runs", body=body)
    assert code == 400 and reply["message"] == "options received"
    assert received == [RunOptions(**CHOSEN)]


def test_the_sidebar_settings_schema_is_the_one_the_options_make():
    """labextension/schema/plugin.json is written by scripts/settings_schema.py; run it after changing an option."""
    from jupyter_medagent.contracts.options import settings_schema

    assert json.loads(SCHEMA.read_text()) == settings_schema(), "run: python scripts/settings_schema.py"


@pytest.mark.parametrize("body, message", [
    ({"max_steps": "many"}, "max_steps must be a whole number, not 'many'"),
    ({"verify": "no"}, "verify must be true or false, not 'no'"),
    ({"skills": "some"}, "skills must be one of none, reference, all, not 'some'"),
    ({"accept": ["dice high"]}, "accept 'dice high': write it as METRIC>=NUMBER or METRIC<=NUMBER"),
    ({"accept": "dice_mean>=0.9"}, "accept must be a list of strings"),
])
async def test_a_bad_option_in_the_api_gets_a_400_naming_it(api, body, message):
    code, reply = await api("runs", body={"request": "x", "notebook_path": "a.ipynb", "isolated": True, **body})
    assert code == 400 and message in reply["message"]
