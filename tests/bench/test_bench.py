"""``medagent bench`` as a user meets it: the CLI in a real subprocess, real worker processes, real kernels.

The suites here are tiny (EF from given labels: no training, about 15 s a run); the default suite is the
benchmark command's job (README)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from jupyter_medagent.bench.suite import SuiteError, load_suite

TINY_SUITE = """
description = "EF from given labels, two flipped labels, two wordings"

[tasks.ef_from_labels]
data = { maker = "cardiac_phantom", cases = 3, seed = 8, pitfalls = ["orientation_flip"] }
max_steps = 30
judge.ef_error = { tolerance = 3.0, min_patients = 2, statistic = "max" }
judge.pitfalls_handled = {}

[tasks.ef_from_labels.wordings]
expert = "Measure LV volumes from the provided ACDC-convention labels after checking orientation, and report the LV ejection fraction per patient."
ordinary = "Compute the LV volumes and ejection fraction of each patient from the given labels."
"""


def medagent(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", *map(str, args)], capture_output=True,
                          text=True, **kwargs)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def tiny_suite(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SUITE)
    return path


# ---------------------------------------------------------------------------------------------- suite files
MALFORMED = [
    ("[tasks.x\nabout = 1", "not a readable TOML suite file"),
    ('kind = "poll"', "'poll' is not a suite kind"),
    ("[tasks.x]\ndata = { maker = \"cardiac_phantom\" }\njudge.dice_mean = { bar = 0.9 }", "tasks.x.wordings: give at least one wording"),
    ("[tasks.x]\ndata = { maker = \"cardiac_phantom\" }\njudge.dice_mean = { bar = 0.9 }\nwordings.polite = \"please\"",
     "tasks.x.wordings.polite: unknown wording"),
    ("[tasks.x]\ndata = { maker = \"cardiac_phantom\", patients = 3 }\njudge.dice_mean = { bar = 0.9 }\nwordings.vague = \"hi\"",
     "tasks.x.data: unknown parameter(s) patients; accepted: cases, seed, pitfalls, layout, frames"),
    ("[tasks.x]\ndata = { maker = \"mri_scanner\" }\njudge.dice_mean = { bar = 0.9 }\nwordings.vague = \"hi\"",
     "tasks.x.data.maker: unknown data maker 'mri_scanner'"),
    ("[tasks.x]\ndata = { maker = \"spheres\" }\njudge.dice_mean = {}\nwordings.vague = \"hi\"",
     "tasks.x.judge.dice_mean: missing parameter(s) bar"),
    ("[tasks.x]\ndata = { maker = \"spheres\" }\njudge.vibes = { bar = 1 }\nwordings.vague = \"hi\"",
     "tasks.x.judge.vibes: unknown criterion"),
    ('kind = "judge"', "sets: a judge suite needs at least one [[sets]] table"),
]


@pytest.mark.parametrize("text, problem", MALFORMED)
def test_a_malformed_suite_file_is_refused_naming_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(SuiteError) as raised:
        load_suite(str(path))
    assert str(path) in str(raised.value) and problem in str(raised.value)


def test_the_cli_refuses_a_malformed_suite_in_one_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[tasks.x]\ndata = { maker = \"spheres\" }\njudge.vibes = { bar = 1 }\nwordings.vague = \"hi\"")
    result = medagent("bench", "--suite", path, "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "broken.toml" in result.stderr and "vibes" in result.stderr
    unknown = medagent("bench", "--suite", "nonesuch", "--out", tmp_path / "out")
    assert unknown.returncode == 2 and "no suite named 'nonesuch'; shipped suites: default, judge" in unknown.stderr


def test_the_shipped_suites_load_with_every_task_in_four_wordings():
    default = load_suite("default")
    assert [t.name for t in default.tasks] == ["cardiac_seg", "cardiac_seg_pitfalls", "ef_from_labels", "spheres_3d",
                                               "lesion_classification", "brain_mni", "ct_hu"]
    assert all(list(t.wordings) == ["expert", "ordinary", "vague", "misleading"] for t in default.tasks)
    assert load_suite("judge").kind == "judge"


# ---------------------------------------------------------------------------------------------- runs
def test_a_killed_worker_is_a_failed_row_the_bench_goes_on_and_a_rerun_skips_what_is_done(tmp_path, tiny_suite):
    out = tmp_path / "out"
    bench = subprocess.Popen([sys.executable, "-m", "jupyter_medagent.cli", "bench", "--suite", str(tiny_suite),
                              "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    worker = None
    while worker is None and time.monotonic() < deadline:  # the first run's worker, once it has started
        worker = next((p for p in psutil.Process(bench.pid).children(recursive=True)
                       if "jupyter_medagent.bench.worker" in " ".join(p.cmdline())), None)
        time.sleep(0.2)
    assert worker is not None, "no worker process appeared"
    time.sleep(3)
    worker.send_signal(signal.SIGKILL)
    stdout, stderr = bench.communicate(timeout=600)
    assert bench.returncode == 0, stderr[-2000:]
    first, second = rows(out)
    assert first["wording"] == "expert" and first["solved"] is False and first["crashed"] is True
    assert "killed by signal 9" in first["verdict"]
    assert second["wording"] == "ordinary" and second["solved"] is True, second["verdict"]
    assert "pitfalls handled 2/2" in second["verdict"] and Path(second["notebook"]).exists()
    assert (out / "report.md").exists() and "killed by signal 9" in (out / "report.md").read_text()

    started = time.monotonic()
    again = medagent("bench", "--suite", tiny_suite, "--out", out, timeout=120)
    assert again.returncode == 0 and "2 run(s), 2 already done, 0 to go" in again.stderr
    assert len(rows(out)) == 2 and time.monotonic() - started < 60


def test_the_report_is_built_from_a_small_results_file(tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    base = {"kind": "agent", "suite": "default", "task": "ef_from_labels", "skills": "all", "repeat": 1, "crashed": False,
            "steps": 11, "seconds": 12.0, "cache_write_tokens": 0, "output_tokens": 0}
    results = [
        {**base, "key": "a", "backend": "offline", "wording": "expert", "solved": True, "verdict": "EF error max 0.01",
         "tokens": 0, "cost_usd": 0.0, "input_tokens": 0, "cache_read_tokens": 0, "calls": []},
        {**base, "key": "b", "backend": "anthropic:claude-x", "wording": "expert", "solved": True, "verdict": "EF ok",
         "tokens": 9000, "cost_usd": 0.04, "input_tokens": 4000, "cache_read_tokens": 3000,
         "calls": [[1000, 100, 0], [1200, 100, 800], [1800, 100, 2200]]},
        {**base, "key": "c", "backend": "anthropic:claude-x", "wording": "vague", "solved": False, "verdict": "failed: x",
         "tokens": 5000, "cost_usd": 0.02, "input_tokens": 2000, "cache_read_tokens": 1000, "calls": [[900, 90, 0]]},
        {"kind": "judge", "key": "j1", "judge": "quantitative", "case": "p1", "broken": True, "pitfall": "orientation_flip",
         "flagged": True, "tokens": 0, "cost_usd": 0.0},
        {"kind": "judge", "key": "j2", "judge": "quantitative", "case": "p2", "broken": False, "pitfall": None,
         "flagged": False, "tokens": 0, "cost_usd": 0.0},
    ]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results) + '{"cut short')
    result = medagent("bench", "--report-only", "--out", out)
    assert result.returncode == 0, result.stderr
    md = (out / "report.md").read_text()
    assert "| anthropic:claude-x | 1/2 | 50% |" in md and "| offline | 1/1 | 100% |" in md
    assert "$0.0600" in md and "4,000" in md  # money in all, cache reads apart
    assert "| ef_from_labels | 1/1 | 0/1 |" in md  # the model's row: expert solved, vague not
    assert "| quantitative | 1/1 | 100% | 0/1 | 0% |" in md
    for plot in ("success_vs_cost", "success_by_wording", "token_growth"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3


def test_the_judge_suite_scores_the_quantitative_judge(tmp_path):
    suite = tmp_path / "judges.toml"
    suite.write_text('kind = "judge"\n[[sets]]\nmaker = "brain_mni"\nsubjects = 4\nwrong_spacing = 1\nflipped = 1\n')
    result = medagent("bench", "--suite", suite, "--out", tmp_path / "out", timeout=300)
    assert result.returncode == 0, result.stderr
    verdicts = {r["case"]: r for r in rows(tmp_path / "out")}
    assert {c: (r["broken"], r["flagged"]) for c, r in verdicts.items()} == {
        "sub-01": (True, True), "sub-02": (True, True), "sub-03": (False, False), "sub-04": (False, False)}
    assert "| quantitative | 2/2 | 100% | 0/2 | 0% |" in (tmp_path / "out" / "report.md").read_text()


def test_a_vlm_judge_is_scored_beside_the_quantitative_one(tmp_path):
    """A model that flags everything (a local server speaking OpenAI's protocol) sees every pair's montage and
    is scored as what it is: every broken pair caught, every correct pair a false alarm."""
    from tests.backends.wire import WireServer, openai_reply

    server = WireServer([openai_reply(tool=("report", {"verdict": "flag", "findings": []})) for _ in range(4)])
    suite = tmp_path / "judges.toml"
    suite.write_text('kind = "judge"\n[[sets]]\nmaker = "brain_mni"\nsubjects = 2\nwrong_spacing = 0\nflipped = 1\n')
    try:
        result = medagent("bench", "--suite", suite, "--out", tmp_path / "out", "--vlm-judge",
                          f"openai:flagger@{server.url}/v1", timeout=300)
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 2
    assert any(part.get("type") == "image_url" for part in server.requests[0]["messages"][1]["content"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| quantitative | 1/1 | 100% | 0/1 | 0% |" in report
    assert "| vlm:openai:flagger@" in report and "| 1/1 | 100% | 1/1 | 100% |" in report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_go_to_a_ray_cluster(tmp_path, tiny_suite):
    """A local Ray head started here (and stopped by its process ids), the bench submitting to its address."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen([Path(sys.executable).with_name("ray"), "start", "--head", "--block", "--node-ip-address",
                             "127.0.0.1", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false",
                             "--disable-usage-stats"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, "ray start exited"
            time.sleep(0.5)
        result = medagent("bench", "--suite", tiny_suite, "--wordings", "ordinary", "--out", tmp_path / "out",
                          "--ray", f"127.0.0.1:{port}", env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        (row,) = rows(tmp_path / "out")
        assert row["solved"] is True, row["verdict"]
        assert (tmp_path / "out" / "report.html").exists()
    finally:
        processes = [head_process := psutil.Process(head.pid), *head_process.children(recursive=True)]
        for process in processes:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(processes, timeout=30)
        for process in alive:
            process.kill()
