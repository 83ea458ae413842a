"""What a model reads, through the real ``openai`` SDK against a local Chat Completions server: rich cell
outputs as text, images with the call that made them (and not again), cut outputs that say how to read the
rest, and compacted history that says it is elided and where the current sources are."""

from __future__ import annotations

import json

from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.backends.openai_api import OpenAIBackend
from jupyter_medagent.backends.pricing import PriceTable

from .wire import openai_reply

PRICES = {"local-test": {"input": 1.0, "output": 2.0, "cache_read": 0.1}}

RICH_CELL = """from IPython.display import HTML, display
from jupyter_medagent.judge import display_findings
from jupyter_medagent.pipelines.report import show_metrics, table
table([["patient001", 61.2], ["patient002", 48.9]], ["patient", "ef_percent"])
display(HTML("<p>Volumes</p><table><thead><tr><th>case</th><th>LV mL</th></tr></thead>"
             "<tbody><tr><td>patient001_ED</td><td>151.3</td></tr></tbody></table>"))
display_findings([{"case": "patient003_ES", "kind": "orientation_flip", "severity": "error",
                   "message": "label flipped along voxel axis 0", "evidence": {"flip_axis": 0}},
                  {"case": "patient004_ED", "kind": "intensity_scale", "severity": "warning",
                   "message": "intensities 1000x the others", "evidence": {}}])
show_metrics({"ef_mae": 0.4, "ef_percent": {"patient001": 61.2, "patient002": 48.9}})
"""
LONG_CELL = "for i in range(3000):\n    print(f'row {i:04d} ' + 'x' * 20)\n"
NOISE = "__import__('numpy').random.default_rng({seed}).random((24, 24, 24))"


def backend(url):
    return OpenAIBackend("local-test", api_key="not-needed", base_url=url + "/v1", prices=PriceTable.load(PRICES))


def tool_results(request):
    return {m["tool_call_id"]: m["content"] for m in request["messages"] if m["role"] == "tool"}


def image_messages(request):
    return [m for m in request["messages"] if m["role"] == "user" and isinstance(m["content"], list)
            and any(p["type"] == "image_url" for p in m["content"])]


def test_the_model_reads_every_output_its_own_images_and_a_visible_compaction(server, kernel, tmp_path):
    renders = [("render", {"image": NOISE.format(seed=i), "title": f"montage {i}"}) for i in range(3)]
    script = [
        openai_reply(tool=("add_cell", {"source": RICH_CELL, "note": "Show the results."}), call_id="rich"),
        openai_reply(tools=renders, call_id="look"),  # three renders in one turn
        openai_reply(tool=("add_cell", {"source": LONG_CELL, "note": "Print many rows."}), call_id="long"),
        openai_reply(tool=("read_output", {"cell_id": "c5", "start": 2000, "end": 2002}), call_id="read"),
        openai_reply(tools=[("list_variables", {})] * 4, call_id="vars"),
        openai_reply(tool=("show_cell", {"cell_id": "c1"}), call_id="show"),
        openai_reply(tool=("finish", {"status": "failed", "summary": "only looking"}), call_id="end"),
    ]
    srv = server(script)
    agent = Agent(Task("show me", None, str(tmp_path)), backend(srv.url), kernel, reexecute=False)
    finished = list(agent.run())[-1]
    assert finished.status == "failed" and finished.reason == "only looking"
    requests = srv.requests

    # 1. Markdown and HTML tables, findings one line each, the metric bundle as JSON with its per-patient dict.
    rich = tool_results(requests[1])["rich"]
    assert "IPython.core.display" not in rich and "object>" not in rich
    assert "| patient | ef_percent |" in rich and "| patient001 | 61.2 |" in rich
    assert "| case | LV mL |" in rich and "| patient001_ED | 151.3 |" in rich and "Volumes" in rich
    assert "- patient003_ES: orientation_flip (error): label flipped along voxel axis 0" in rich
    assert "- patient004_ED: intensity_scale (warning)" in rich
    metrics = next(line for line in rich.splitlines() if line.startswith("metrics: "))
    assert json.loads(metrics.removeprefix("metrics: ")) == {"ef_mae": 0.4, "ef_percent": {"patient001": 61.2,
                                                                                         "patient002": 48.9}}

    # 2. One assistant message for the turn's three calls; each image right after the results, named by its call.
    second = requests[2]
    calls = [m for m in second["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
    assert [c["id"] for c in calls[-1]["tool_calls"]] == ["look_0", "look_1", "look_2"]
    pictures = image_messages(second)
    assert len(pictures) == 3
    assert [p["content"][0]["text"].split(" (call ")[1].split(")")[0] for p in pictures] == ["look_0", "look_1", "look_2"]
    last_result = max(i for i, m in enumerate(second["messages"]) if m.get("tool_call_id") == "look_2")
    assert all(second["messages"].index(p) > last_result for p in pictures)
    assert all("attached to this result" in tool_results(second)[f"look_{i}"] for i in range(3))
    # ... and never again: later requests say they were shown.
    assert all(not image_messages(r) for r in requests[3:])
    assert "not sent again" in tool_results(requests[3])["look_0"]

    # 3. A long output is cut at line boundaries, says what was cut, and read_output returns it.
    long = tool_results(requests[3])["long"]
    assert len(long) < 7000 and "read_output(cell_id='c5', start=" in long
    assert all(line.startswith(("row ", "[... lines", "<", "cell c5")) for line in long.splitlines() if line)
    assert "row 0000 " in long and "row 2999 " in long
    read = tool_results(requests[4])["read"]
    assert "lines 2000-2002 of 3000" in read and "row 1999 " in read and "row 2001 " in read and "row 2002" not in read

    # 4. Parallel calls count as one turn: the progress line counts turns and shows what was spent.
    progress = requests[5]["messages"][-1]["content"]
    assert progress.startswith("Turn 6 of at most 80") and "tokens" in progress and "$" in progress
    assert agent.turns == 7 and len(agent.history) == 12

    # 5. Older steps come back marked as elided, pointing at the tools that return the current cells.
    elided = tool_results(requests[5])["rich"]
    assert elided.startswith("[elided] cell c1 ran") and "show_cell('c1')" in elided
    shown = tool_results(requests[6])["show"]
    assert "from IPython.display import HTML, display" in shown and "Show the results." in shown


def test_anthropic_results_carry_their_own_images_one_message_per_turn(server, kernel, tmp_path):
    from jupyter_medagent.backends.anthropic_api import AnthropicBackend

    from .wire import anthropic_reply

    renders = [("render", {"image": NOISE.format(seed=i), "title": f"montage {i}"}) for i in range(3)]
    srv = server([anthropic_reply(tools=renders, tool_id="look"), anthropic_reply(tool=("list_cells", {}), tool_id="ls"),
                  anthropic_reply(tool=("finish", {"status": "failed", "summary": "only looking"}), tool_id="end")])
    model = AnthropicBackend("claude-test", api_key="sk-test", base_url=srv.url,
                             prices=PriceTable.load({"claude-test": {"input": 3.0, "output": 15.0}}))
    finished = list(Agent(Task("show me", None, str(tmp_path)), model, kernel, reexecute=False).run())[-1]
    assert finished.reason == "only looking"
    messages = srv.requests[1]["messages"]
    assert [b["id"] for b in messages[1]["content"]] == ["look_0", "look_1", "look_2"]
    results = [b for b in messages[2]["content"] if b["type"] == "tool_result"]
    assert [r["tool_use_id"] for r in results] == ["look_0", "look_1", "look_2"]
    assert all([c["type"] for c in r["content"]] == ["text", "image"] for r in results)
    # The next request keeps the calls and their results, not the images.
    later = [b for b in srv.requests[2]["messages"][2]["content"] if b["type"] == "tool_result"]
    assert all([c["type"] for c in r["content"]] == ["text"] for r in later)
    assert "not sent again" in later[0]["content"][0]["text"]
    listing = [b for b in srv.requests[2]["messages"][4]["content"] if b["type"] == "tool_result"][0]["content"][0]["text"]
    assert "c1 [ok] Render montage 0" in listing and "c3 [ok]" in listing


def test_a_dataframe_and_a_long_line_read_as_text():
    import pandas as pd

    from jupyter_medagent.kernel.outputs import cut_lines, outputs_as_text

    frame = pd.DataFrame({"patient": ["p1", "p2"], "ef": [61.2, 48.9]})
    shown = outputs_as_text([{"output_type": "execute_result", "data": {"text/html": frame._repr_html_(),
                                                                       "text/plain": repr(frame)}}])
    assert shown.splitlines() == ["|  | patient | ef |", "|---|---|---|", "| 0 | p1 | 61.2 |", "| 1 | p2 | 48.9 |"]
    one_line = "x" * 10_000
    cut = cut_lines(one_line, 1000, cell_id="c2")
    assert len(cut) <= 1000 and "characters cut" in cut and "read_output(cell_id='c2')" in cut
