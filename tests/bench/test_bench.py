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

from jupyter_medagent.bench import runner
from jupyter_medagent.bench.judging import pitfalls_handled
from jupyter_medagent.bench.runner import Bench, ResultsFile, Stopped, Workers
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
                                               "lesion_classification", "brain_mni", "ct_hu", "chest_xray_classification",
                                               "lesion_seg_2d", "itk_slicer_seg"]
    assert all(list(t.wordings) == ["expert", "ordinary", "vague", "misleading"] for t in default.tasks)
    assert load_suite("judge").kind == "judge"


# ---------------------------------------------------------------------------------------------- run keys
LONG_SELECTOR = "openai:Qwen2.5-Coder-32B-Instruct-AWQ@http://gpu-node-17.cluster.local:8090/v1"


def test_runs_differing_only_in_skills_get_folders_of_their_own(tmp_path, tiny_suite):
    specs = Bench(load_suite(str(tiny_suite)), tmp_path, [LONG_SELECTOR], skills=["none", "all"],
                  wordings=["expert"]).specs()
    folders = {Path(s.notebook).parent for s in specs}
    assert len(specs) == 2 and len(folders) == 2
    assert all(f.name.startswith("ef_from_labels-expert-openai_Qwen2.5-Coder") for f in folders)  # still readable


def test_a_task_changed_in_its_suite_file_runs_again(tmp_path, tiny_suite):
    out = tmp_path / "out"
    results = ResultsFile(out)
    for spec in Bench(load_suite(str(tiny_suite)), out, ["offline"]).specs():
        results.add({"key": spec.key})
    assert Bench(load_suite(str(tiny_suite)), out, ["offline"]).pending() == []
    changed = tmp_path / "changed.toml"  # the same runs, judged by a stricter criterion
    changed.write_text(TINY_SUITE.replace("tolerance = 3.0", "tolerance = 1.0"))
    (renamed := tmp_path / "renamed.toml").write_text(TINY_SUITE)
    for suite in (changed, renamed):
        assert len(Bench(load_suite(str(suite)), out, ["offline"]).pending()) == 2, suite.name


# ---------------------------------------------------------------------------------------------- runs
def test_each_row_is_recorded_as_its_run_finishes(tmp_path, tiny_suite, monkeypatch):
    slow, fast = Bench(load_suite(str(tiny_suite)), tmp_path, ["offline"]).specs()

    def run_in_worker(spec, timeout, workers):
        time.sleep(2 if spec is slow else 0)
        return {"wording": spec.wording, "at": time.monotonic()}

    monkeypatch.setattr(runner, "run_in_worker", run_in_worker)
    recorded = []
    runner.run_local([slow, fast], 2, 60, lambda row: recorded.append({**row, "recorded": time.monotonic()}))
    assert [r["wording"] for r in recorded] == [fast.wording, slow.wording]
    assert recorded[0]["recorded"] - recorded[0]["at"] < 1  # not held back behind the slower run


def test_no_worker_starts_once_the_bench_is_stopping(tmp_path, tiny_suite):
    workers = Workers()
    workers.kill_all()  # Ctrl-C: a worker thread that has not started its process yet must not start it
    spec = Bench(load_suite(str(tiny_suite)), tmp_path, ["offline"]).specs()[0]
    with pytest.raises(Stopped):
        runner.run_in_worker(spec, 60, workers)
    assert not workers.running


def test_a_task_whose_data_cannot_be_made_fails_its_runs_and_the_bench_goes_on(tmp_path, tiny_suite):
    """nilearn missing (a package here that fails to import as a missing one does): the brain task's run is a
    failed row saying what to install, the other task is run and solved, and the next invocation tries the
    brain task again. No truth is left on disk beside the data."""
    suite = tmp_path / "two.toml"
    suite.write_text(TINY_SUITE + """
[tasks.brain]
data = { maker = "brain_mni", subjects = 2 }
judge.volume_error = { tolerance_percent = 2.0, key = "brain_ml" }
wordings.ordinary = "How big is each subject's brain?"
""")
    fake = tmp_path / "fake" / "nilearn"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'nilearn'\", name='nilearn')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "out"
    result = medagent("bench", "--suite", suite, "--wordings", "ordinary", "--out", out, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    by_task = {r["task"]: r for r in rows(out)}
    assert by_task["brain"]["solved"] is False and by_task["brain"]["crashed"] is True
    assert "the brain_mni data could not be made (pip install 'jupyter_medagent[bench]')" in by_task["brain"]["verdict"]
    assert "No module named 'nilearn'" in by_task["brain"]["verdict"]
    assert by_task["ef_from_labels"]["solved"] is True, by_task["ef_from_labels"]["verdict"]
    again = Bench(load_suite(str(suite)), out, ["offline"], wordings=["ordinary"]).pending()
    assert [s.task for s in again] == ["brain"]
    assert not list(out.rglob("*truth*")) and not list((out / "data").rglob("manifest.json"))


def test_a_list_of_every_case_in_the_notebook_handles_no_pitfall(tmp_path):
    truth = {"cases": [f"patient00{n}_{phase}" for n in range(1, 4) for phase in ("ED", "ES")],
             "pitfalls": [{"case": "patient002_ES", "kind": "orientation_flip"}]}

    def judged(*cells, fixed=()):
        nb = {"cells": [{"cell_type": "code", "source": [cell]} for cell in cells],
              "metadata": {"medagent": {"findings_fixed": [{"case": c, "finding": k} for c, k in fixed]}}}
        (path := tmp_path / "nb.ipynb").write_text(json.dumps(nb))
        return pitfalls_handled({"notebook": str(path)}, truth)

    listing = f"cases = {truth['cases']!r}\nfor case in cases:\n    measure(case)"
    assert judged(listing) == (False, "pitfalls handled 0/1 (missed patient002_ES:orientation_flip)")
    assert judged(listing, "labels['patient002_ES'] = flip(labels['patient002_ES'])")[0] is True
    assert judged(listing, fixed=[("patient002_ES", "orientation_flip")])[0] is True


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
    results = [  # the first row is superseded by the second (the same run, made again): the report counts it once
        {**base, "key": "a0", "backend": "offline", "wording": "expert", "solved": False, "verdict": "crashed: no data",
         "tokens": 0, "cost_usd": 0.0, "input_tokens": 0, "cache_read_tokens": 0, "calls": [], "started": False},
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


def test_the_data_folder_tells_the_model_nothing_about_the_data(tmp_path, tiny_suite):
    """The request a model reads carries the data folder's path: named by a hash, never by the maker's parameters."""
    specs = Bench(load_suite(str(tiny_suite)), tmp_path / "out", ["offline"]).specs()
    folders = {Path(s.data_dir).name for s in specs}
    assert len(folders) == 1  # data made alike is shared
    (folder,) = folders
    assert folder.startswith("data-") and not any(word in folder for word in ("pitfall", "orientation", "seed",
                                                                              "cases", "phantom"))
    default = load_suite("default")
    names = {t.data.folder_name for t in default.tasks}
    assert len(names) == len({(t.data.maker, json.dumps(t.data.params, sort_keys=True)) for t in default.tasks})


def test_a_pitfall_counts_only_when_it_can_change_a_measurement_from_labels(tmp_path):
    truth = {"cases": [f"patient00{n}_{phase}" for n in range(1, 5) for phase in ("ED", "ES")],
             "pitfalls": [{"case": "patient002_ES", "kind": "orientation_flip"},
                          {"case": "patient004_ES", "kind": "intensity_scale"},
                          {"case": "patient003_ED", "kind": "label_convention"}]}
    nb = {"cells": [{"cell_type": "code", "source": ["labels['patient003_ED'] = remap(labels['patient003_ED'])"]}],
          "metadata": {"medagent": {}}}
    (path := tmp_path / "nb.ipynb").write_text(json.dumps(nb))
    run = {"notebook": str(path)}
    met, what = pitfalls_handled(run, truth, measured_from="labels")
    assert met is True and what.startswith("pitfalls handled 1/1")
    assert "not counted" in what and "patient004_ES:intensity_scale" in what and "patient002_ES:orientation_flip" in what
    # A segmentation task trains on the labels and normalises the images: every pitfall counts.
    assert pitfalls_handled(run, truth)[0] is False
    nb["cells"] = [{"cell_type": "code", "source": ["print('no fixes')"]}]
    path.write_text(json.dumps(nb))
    assert pitfalls_handled(run, truth, measured_from="labels") == (
        False, "pitfalls handled 0/1 (missed patient003_ED:label_convention); not counted, they cannot change a "
               "measurement from labels: patient002_ES:orientation_flip, patient004_ES:intensity_scale")
