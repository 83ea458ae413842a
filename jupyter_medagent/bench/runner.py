"""Running a benchmark: every backend x task x wording x skills x repeat of a suite, each run judged and
written to ``results.jsonl`` as soon as it finishes, so a re-run of the same command skips what is done.

Each task's data is made here, in the driver, which keeps the truth it is judged against: a run carries
the truth in its spec, never on disk where an agent's kernel could read it. Runs go to local worker processes
(``python -m jupyter_medagent.bench.worker``, at most ``workers`` at a time) or, with a Ray address, to an
existing Ray cluster as one Ray task per run. Either way a run that crashes or whose process is killed (or
whose data cannot be made) becomes a failed row with its reason; the bench itself goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

from jupyter_medagent.bench.suite import Suite, TaskSpec

RESULTS = "results.jsonl"
# A backend list is split on the commas that start a new selector (offline's own options use commas too).
SELECTOR_START = re.compile(r",\s*(?=(?:offline|anthropic|openai)(?::|,|$))")


def split_backends(text: str) -> list[str]:
    return [s.strip() for s in SELECTOR_START.split(text) if s.strip()]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class RunSpec:
    """One run: everything a worker needs, as plain data (it crosses a process or a Ray cluster)."""

    suite: str
    task: str
    wording: str
    backend: str
    skills: str
    repeat: int
    request: str
    maker: str
    data_params: dict[str, Any]
    data_dir: str
    criteria: dict[str, dict[str, Any]]
    max_steps: int
    max_cost: float | None = None
    trains: bool = False
    isolation: str = "auto"
    notebook: str = ""  # under the run's folder (run_id), set once the spec is whole
    truth: dict[str, Any] | None = None  # from the driver, which made the data (make_task_data)

    @property
    def key(self) -> str:
        """What a finished run is recorded under: a task changed in its suite file (its data, wording, judge or
        step budget) is a new run."""
        definition = short_hash([self.maker, self.data_params, self.criteria, self.max_steps, self.request])
        return f"{self.suite}/{self.task}/{self.wording}/{self.backend}/{self.skills}/{self.repeat}/{definition}"

    @property
    def run_id(self) -> str:
        """The run's folder: readable, and unique through a hash of the whole key (long backend selectors make
        the readable part alike)."""
        readable = slug(f"{self.task}-{self.wording}-{self.backend}-{self.skills}-r{self.repeat}")[:60]
        return f"{readable}-{short_hash(self.key)}"


@dataclass
class Bench:
    suite: Suite
    out: Path
    backends: list[str]
    skills: list[str] = field(default_factory=lambda: ["all"])
    repeats: int = 1
    tasks: list[str] | None = None
    wordings: list[str] | None = None
    max_cost: float | None = None  # USD per run
    isolation: str = "auto"

    def specs(self) -> list[RunSpec]:
        specs = []
        for backend in self.backends:
            for skills in self.skills:
                for task in self._tasks():
                    for wording, request in task.wordings.items():
                        if self.wordings and wording not in self.wordings:
                            continue
                        for repeat in range(1, self.repeats + 1):
                            spec = RunSpec(
                                self.suite.name, task.name, wording, backend, skills, repeat, request,
                                task.data.maker, task.data.params, str(self.out / "data" / task.data.folder_name),
                                task.judge, task.max_steps, self.max_cost, task.trains, self.isolation)
                            spec.notebook = str(self.out / "runs" / spec.run_id / "notebook.ipynb")
                            specs.append(spec)
        return specs

    def _tasks(self) -> Iterable[TaskSpec]:
        return [t for t in self.suite.tasks if not self.tasks or t.name in self.tasks]

    def pending(self) -> list[RunSpec]:
        # A run whose data could not be made never started: the next invocation tries it again.
        done = {row["key"] for row in read_results(self.out) if row.get("started", True)}
        return [s for s in self.specs() if s.key not in done]


def read_results(out: Path) -> list[dict[str, Any]]:
    """The rows of ``out/results.jsonl``; a line cut short by a crash while it was written is skipped."""
    path = Path(out) / RESULTS
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


class ResultsFile:
    """Appends one JSON line per finished run, from any thread, flushed at once."""

    def __init__(self, out: Path):
        self.path = Path(out) / RESULTS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def add(self, row: dict[str, Any]) -> None:
        with self.lock, open(self.path, "a") as handle:
            handle.write(json.dumps(row, default=str) + "\n")


# ---------------------------------------------------------------------------------------------- data
def make_task_data(specs: list[RunSpec], record: Callable[[dict[str, Any]], None]) -> list[RunSpec]:
    """Each task's data made once, in the driver, and the runs that can go with their truth; the runs of a task
    whose data cannot be made (a maker's package missing, say) are recorded as failed rows, never started."""
    from jupyter_medagent.bench.data import make_data

    truths: dict[str, dict[str, Any] | None] = {}
    for spec in specs:
        if spec.data_dir in truths:
            continue
        since = time.monotonic()
        try:
            truths[spec.data_dir] = make_data(spec.maker, spec.data_params, Path(spec.data_dir))
        except Exception as exc:
            truths[spec.data_dir] = None
            hint = " (pip install 'jupyter_medagent[bench]')" if isinstance(exc, ImportError) else ""
            reason = f"the {spec.maker} data could not be made{hint}: {type(exc).__name__}: {exc}"
            for mine in (s for s in specs if s.data_dir == spec.data_dir):
                record({**crashed_row(mine, reason, time.monotonic() - since), "started": False})
    return [replace(s, truth=truths[s.data_dir]) for s in specs if truths[s.data_dir] is not None]


# ---------------------------------------------------------------------------------------------- one run
def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run the agent on the task's data (made by the driver) through the CLI's path (session.run_session), judge the result."""
    from jupyter_medagent.bench.judging import judge_run
    from jupyter_medagent.contracts.options import RunOptions
    from jupyter_medagent.session import RunSetup, output_folder, run_session

    started = time.monotonic()
    notebook = Path(spec.notebook)
    notebook.parent.mkdir(parents=True, exist_ok=True)
    notebook.unlink(missing_ok=True)  # a run cut short before: start afresh, under the same name
    shutil.rmtree(output_folder(notebook), ignore_errors=True)
    # No one is at a console to approve cells: the static gate enforces, the sandbox isolates where it can.
    options = RunOptions(backend=spec.backend, max_steps=spec.max_steps, max_cost=spec.max_cost, safety="enforce",
                         isolation=spec.isolation, skills=spec.skills)
    summary, _ = run_session(RunSetup(spec.request, spec.data_dir, notebook=spec.notebook, options=options), quiet=True)
    solved, verdict = judge_run(summary, spec.truth, spec.criteria)
    return row_for(spec, solved, verdict, seconds=time.monotonic() - started, summary=summary)


def row_for(spec: RunSpec, solved: bool, verdict: str, *, seconds: float, summary: dict[str, Any] | None = None,
            crashed: bool = False) -> dict[str, Any]:
    summary = summary or {}
    usage = summary.get("usage", {})
    return {
        "kind": "agent", "key": spec.key, "suite": spec.suite, "task": spec.task, "wording": spec.wording, "backend": spec.backend,
        "skills": spec.skills, "repeat": spec.repeat, "solved": solved, "verdict": verdict, "crashed": crashed,
        "agent_status": summary.get("status", "crashed" if crashed else None), "reason": summary.get("reason", verdict),
        "reexecuted_ok": summary.get("reexecuted_ok"), "steps": summary.get("steps", 0),
        "seconds": round(seconds, 1), "tokens": summary.get("tokens", 0), "cost_usd": summary.get("cost_usd", 0.0),
        "input_tokens": usage.get("input_tokens", 0), "output_tokens": usage.get("output_tokens", 0),
        "cache_read_tokens": usage.get("cache_read_tokens", 0), "cache_write_tokens": usage.get("cache_write_tokens", 0),
        "calls": [[c["input_tokens"], c["output_tokens"], c["cache_read_tokens"]] for c in summary.get("calls", [])],
        "model": summary.get("model"), "notebook": summary.get("notebook"),
        "metrics": {k: v for k, v in summary.get("metrics", {}).items() if isinstance(v, (int, float))},
    }


def crashed_row(spec: RunSpec, reason: str, seconds: float) -> dict[str, Any]:
    return row_for(spec, False, f"crashed: {reason}"[:300], seconds=seconds, crashed=True)


# ---------------------------------------------------------------------------------------------- local workers
class Stopped(Exception):
    """The bench is stopping: no worker starts any more."""


class Workers:
    """The worker processes running now, so that stopping the bench stops them (each leads its own session,
    where its kernels live too)."""

    def __init__(self):
        self.running: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False

    def start(self, argv: list[str], **popen: Any) -> subprocess.Popen:
        """A worker started and registered under the lock kill_all takes, so none starts unseen while it runs
        or after."""
        with self.lock:
            if self.stopping:
                raise Stopped
            process = subprocess.Popen(argv, **popen)
            self.running.add(process)
            return process

    def finished(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.running.discard(process)

    def kill_all(self) -> None:
        with self.lock:
            self.stopping = True
            for process in list(self.running):
                _kill_group(process)


def run_in_worker(spec: RunSpec, timeout: float, workers: Workers) -> dict[str, Any]:
    """One run in its own process; whatever happens to that process, a row comes back."""
    started = time.monotonic()
    row_file = Path(spec.notebook).with_name("row.json")
    row_file.parent.mkdir(parents=True, exist_ok=True)
    row_file.unlink(missing_ok=True)
    log = row_file.with_name("worker.log")
    with open(log, "w") as stderr:
        process = workers.start([sys.executable, "-m", "jupyter_medagent.bench.worker", str(row_file)],
                                stdin=subprocess.PIPE, stdout=stderr, stderr=stderr, text=True,
                                start_new_session=True)  # Ctrl-C reaches the bench, which stops its workers
        try:
            process.communicate(json.dumps(asdict(spec)), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return crashed_row(spec, f"ran past the run time-out of {timeout:.0f} s and was killed",
                               time.monotonic() - started)
        finally:
            workers.finished(process)
    if row_file.exists():
        return json.loads(row_file.read_text())
    _kill_group(process)  # what the dead worker left running in its session (its kernels)
    code = process.returncode
    why = f"the worker process was killed by signal {-code}" if code < 0 else f"the worker process exited with code {code}"
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
    return crashed_row(spec, why + (f" ({tail[0][:160]})" if tail else ""), time.monotonic() - started)


def _kill_group(process: subprocess.Popen) -> None:
    """The worker and its kernels (they share its session)."""
    import os
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@contextmanager
def sigterm_as_ctrl_c():
    """SIGTERM stops the bench as Ctrl-C does (a batch system's way of stopping it)."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_local(specs: list[RunSpec], workers: int, timeout: float, record: Callable[[dict[str, Any]], None]) -> None:
    """The runs in at most ``workers`` local processes at a time, each recorded as it finishes; Ctrl-C (or
    SIGTERM) stops them all, and the runs it cut short leave no row, so the next invocation runs them again."""
    running = Workers()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="medagent-bench")
    with sigterm_as_ctrl_c():
        futures = [pool.submit(run_in_worker, spec, timeout, running) for spec in specs]
        try:
            for future in as_completed(futures):
                record(future.result())
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            running.kill_all()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------------- Ray
def run_ray(specs: list[RunSpec], address: str, record: Callable[[dict[str, Any]], None]) -> None:
    """One Ray task per run on the cluster at ``address`` (jupyter_medagent must be installed on its nodes, and
    the data and run folders be where every node sees them); a task that trains asks for a GPU where the
    cluster has one. A task whose worker dies is a failed row; Ctrl-C (or SIGTERM) cancels the tasks left.
    The run time-out does not apply: a task waits in Ray's queue for a free node, and nothing here knows when
    it starts."""
    try:
        import ray
    except ImportError:
        from jupyter_medagent.contracts.errors import MedagentError

        raise MedagentError("--ray needs Ray: pip install 'jupyter_medagent[ray]'") from None
    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    pending = {}
    try:
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        remote = ray.remote(max_retries=0)(_ray_task)
        for spec in specs:
            options = {"num_cpus": 1, "num_gpus": 1 if spec.trains and has_gpu else 0}
            pending[remote.options(**options).remote(asdict(spec))] = (spec, time.monotonic())
        with sigterm_as_ctrl_c():
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                spec, started = pending.pop(done[0])
                try:
                    record(ray.get(done[0]))
                except Exception as exc:  # the task's worker died or the task raised: a failed row, never the bench
                    record(crashed_row(spec, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                       time.monotonic() - started))
    except KeyboardInterrupt:
        for ref in pending:  # as the local workers are killed: no run goes on after the bench has stopped
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.shutdown()


def _ray_task(spec: dict[str, Any]) -> dict[str, Any]:
    return guarded_run(RunSpec(**spec))


def guarded_run(spec: RunSpec) -> dict[str, Any]:
    """run_one, with an exception inside the run turned into its failed row."""
    started = time.monotonic()
    try:
        return run_one(spec)
    except Exception as exc:
        return crashed_row(spec, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
