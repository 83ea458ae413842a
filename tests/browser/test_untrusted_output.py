"""In Chromium: what a model-written cell shows never runs as script, neither under the magic (its timeline,
the mirrored cells) nor in the user's later cells of the kernel the model touched."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from .conftest import kernel_ready, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from backends.wire import WireServer, openai_reply  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture()
def canary():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append(self.path)
            self.send_response(204)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_script_and_onerror_from_a_model_cell_do_not_run(page, lab, canary):
    url, root = lab
    canary_url, hits = canary
    payload = (f"<script>window.medagentScript = 1; fetch('{canary_url}/script')</script>"
               f"<img src='x-missing' onerror=\"window.medagentOnerror = 1; fetch('{canary_url}/onerror')\">")
    cell = ("from IPython.display import HTML, Javascript, display\n"
            f"display(HTML({payload!r}))\n"
            f"display(Javascript(\"window.medagentJs = 1; fetch('{canary_url}/js')\"))\n"
            "get_ipython().display_formatter.formatters['text/html'].for_type(\n"
            f"    int, lambda n: {payload!r})\n"
            "print('shown')")
    script = [("add_cell", {"source": cell, "note": "Show the result."}),
              ("finish", {"status": "solved", "summary": "shown"})]
    model = WireServer([openai_reply(tool=step, call_id=f"call_{i}") for i, step in enumerate(script)])
    try:
        new_notebook(root, "untrusted.ipynb", [
            "%load_ext jupyter_medagent",
            f"%%medagent --data data --no-verify --safety enforce --backend openai:test@{model.url}/v1\nShow it.",
            "answer = 42\nanswer"])
        page.goto(f"{url}/lab/tree/untrusted.ipynb?reset")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        kernel_ready(url, "untrusted.ipynb")
        page.click(".jp-Notebook .jp-Cell >> nth=0")
        page.keyboard.press("Shift+Enter")
        page.keyboard.press("Shift+Enter")
        page.wait_for_selector(".jp-MedAgent-runOutput .jp-MedAgent-finished", timeout=120_000)
        # The user's own next cell, in the kernel the model touched (it is below the mirrored cells now).
        page.locator(".jp-Notebook .jp-Cell", has_text="answer = 42").last.click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_selector(".jp-OutputArea-output:has-text('42')", timeout=60_000)
        page.wait_for_timeout(2000)
        flags = page.evaluate("[window.medagentScript, window.medagentOnerror, window.medagentJs]")
        assert flags == [None, None, None] and hits == []
        assert page.locator(".jp-Notebook .jp-MedAgent-agentCell").count() >= 1
    finally:
        model.close()
