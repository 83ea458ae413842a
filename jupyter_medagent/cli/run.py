"""``medagent run`` (a request on a data folder) and ``medagent demo`` (the synthetic cardiac demo)."""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time
from pathlib import Path

from jupyter_medagent.errors import DataError, MedagentError
from jupyter_medagent.safety.policy import SAFETY_MODES

DEMO_REQUEST = ("Segment the left ventricle, myocardium and right ventricle in these short-axis cine MRIs "
                "and report the ejection fraction per patient.")
DEMO_ACCEPTANCE = {"dice_mean": [">=", 0.90], "ef_abs_error": ["<=", 3.0]}
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="build, run and verify a pipeline for a plain-language request")
    run.add_argument("request", help="what you want, in plain words")
    run.add_argument("--data", required=True, help="folder of scans")
    run.add_argument("--out", default="medagent.ipynb", help="refined notebook to write (default medagent.ipynb)")
    run.add_argument("--backend", default=None,
                     help="offline (default), anthropic:MODEL or openai:MODEL[@URL]; the config file may set another default")
    run.add_argument("--max-steps", type=int, default=80,
                     help="budget in model turns (a reply with several tool calls is one turn; default 80)")
    run.add_argument("--accept", action="append", default=[], metavar="METRIC>=X",
                     help="quality bar, e.g. 'dice_mean>=0.9' or 'ef_abs_error<=3' (repeatable)")
    run.add_argument("--json", action="store_true", help="print one JSON summary object on stdout")
    add_agent_options(run)
    run.set_defaults(handler=run_command)
    demo = subparsers.add_parser("demo", help="synthesise cardiac cine data with planted pitfalls and solve it offline")
    demo.add_argument("--out", default="medagent-demo", help="folder for the data and the notebook")
    demo.add_argument("--cases", type=int, default=20, help="number of synthetic patients (default 20)")
    demo.add_argument("--backend", default=None, help="as for run (default: offline)")
    demo.add_argument("--json", action="store_true")
    add_agent_options(demo)
    demo.set_defaults(handler=demo_command)


def add_agent_options(parser) -> None:
    from jupyter_medagent.agent.skills import SKILL_LEVELS
    from jupyter_medagent.isolation import ISOLATION_MODES

    parser.add_argument("--safety", default=None, choices=SAFETY_MODES,
                        help="enforce (default): refuse shell, network, installs and writes outside the output folder; "
                             "approve: ask before every cell, showing the gate's concerns (the default for a model "
                             "backend when the sandbox is unavailable); off: no static gate")
    parser.add_argument("--isolation", default="auto", choices=ISOLATION_MODES,
                        help="auto (default): kernels run in a bubblewrap sandbox where it works, else behind the "
                             "runtime guard; sandbox: insist on it; guard: the runtime guard only; off: neither")
    parser.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                        help="interrupt a cell that runs longer than S seconds (default: no limit)")
    parser.add_argument("--on-kernel-death", default="fail", choices=("fail", "restart"),
                        help="fail (default): end the run; restart: a fresh kernel, the kept cells replayed")
    parser.add_argument("--kernel-memory", type=int, default=None, metavar="MB",
                        help="address-space limit of the run's kernels (default: 80%% of the machine's memory; 0: none)")
    parser.add_argument("--kernel-cpu", type=int, default=None, metavar="S",
                        help="processor-time limit of each kernel in seconds (default: 4 hours; 0: none)")
    parser.add_argument("--max-cost", type=float, default=None, metavar="USD", help="money budget for model calls")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip re-running the refined notebook top to bottom; it is then marked 'not verified'")
    parser.add_argument("--vlm-judge", default=None, metavar="SELECTOR",
                        help="also judge rendered slices with a vision-language model, e.g. anthropic:claude-sonnet-4-5")
    parser.add_argument("--skills", default="all", choices=SKILL_LEVELS,
                        help="what a model backend gets besides the basic tools: all (default): toolkit_reference and "
                             "propose_recipe (the offline planner's plan); reference: toolkit_reference only; none")
    parser.add_argument("--kernel-gateway", default=None, metavar="URL",
                        help="run the cells (and the verification re-run) in kernels of the Jupyter Kernel Gateway or "
                             "Enterprise Gateway at URL; the data folder must be visible there at the same path")


def parse_acceptance(items: list[str]) -> dict[str, list]:
    acceptance = {}
    for item in items:
        match = re.fullmatch(r"\s*(\w+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*", item)
        if not match:
            raise MedagentError(f"--accept {item!r}: write it as METRIC>=NUMBER or METRIC<=NUMBER")
        acceptance[match[1]] = [match[2], float(match[3])]
    return acceptance


def execute(options, quiet: bool) -> tuple[dict, object]:
    """Run one agent session (``RunOptions``) in a kernel of its own; returns (summary, backend)."""
    from jupyter_medagent.agent.approval import ask_on_console
    from jupyter_medagent.agent.narrate import describe
    from jupyter_medagent.kernel import KernelClientExecutor
    from jupyter_medagent.session import build_agent

    started = time.monotonic()
    agent = build_agent(options, lambda isolation: isolation.new_kernel_executor(), approver=ask_on_console)
    backend, executor = agent.backend, agent.executor
    finished = None

    def on_sigint(signum, frame):
        """The first Ctrl-C stops the run cleanly (the notebook is kept, marked stopped); a second one quits."""
        if agent.stopped:
            raise KeyboardInterrupt
        print("medagent: stopping (Ctrl-C again to quit at once)...", file=sys.stderr, flush=True)
        agent.stop()

    calls = []  # tokens of each model call (judges' included), in order: how the context grows step by step
    # Only a main thread may handle signals (a Ray task or a thread pool may run this elsewhere).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        for event in agent.run():
            line = describe(event)
            if line and not quiet:
                show_progress(event, line) if event.kind == "progress" else print(line, file=sys.stderr, flush=True)
            if event.kind == "usage":
                calls.append({k: getattr(event, k) for k in USAGE_FIELDS})
            finished = event if event.kind == "finished" else finished
    except KeyboardInterrupt:
        for event in agent.abandon("interrupted twice by the user"):
            finished = event
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
        executor.close()
    seconds = time.monotonic() - started
    metrics = dict(finished.metrics)
    training = float(metrics.get("training_seconds", 0.0))
    summary = {
        "status": finished.status, "reason": finished.reason, "summary": finished.summary,
        "steps": agent.turns, "tool_calls": len(agent.history), "seconds": round(seconds, 1),
        "time_split": {"training_seconds": round(training, 1), "other_seconds": round(seconds - training, 1),
                       "note": "training_seconds counts the agent's own training run; re-execution retrains"},
        "notebook": finished.notebook, "reexecuted_ok": finished.reexecuted_ok, "verified": finished.verified,
        "headline": finished.headline,
        "backend": backend.name, "model": backend.model, "metrics": metrics,
        "tokens": agent.tokens, "cost_usd": round(agent.cost_usd, 6),
        "usage": {k: sum(c[k] for c in calls) for k in USAGE_FIELDS if k != "cost_usd"}, "calls": calls,
        "dice": {k[5:]: v for k, v in metrics.items() if k.startswith("dice_") and k != "dice_mean"},
        "dice_mean": metrics.get("dice_mean"), "ef_abs_error": metrics.get("ef_abs_error"),
        "repairs": list(getattr(backend, "repairs", [])),
    }
    return summary, backend


def show_progress(event, line: str) -> None:
    """A progress line rewritten in place on a terminal; in a log, only where the work ends."""
    if sys.stderr.isatty():
        print("\r" + line, end="\n" if event.done >= event.total else "", file=sys.stderr, flush=True)
    elif event.done >= event.total:
        print(line, file=sys.stderr, flush=True)


def options_from(args, request: str, data, notebook, acceptance: dict, max_steps: int = 80):
    from jupyter_medagent.isolation import KernelLimits
    from jupyter_medagent.session import RunOptions

    default = KernelLimits.default()
    limits = KernelLimits(default.memory_mb if args.kernel_memory is None else args.kernel_memory or None,
                          default.cpu_seconds if args.kernel_cpu is None else args.kernel_cpu or None)
    return RunOptions(request, str(data), Path.cwd(), str(notebook), args.backend, args.vlm_judge, max_steps,
                      args.max_cost, args.safety, acceptance, reexecute=not args.no_verify, isolation=args.isolation,
                      cell_timeout=args.cell_timeout, on_kernel_death=args.on_kernel_death, limits=limits,
                      kernel_gateway=args.kernel_gateway, skills=args.skills)


def exit_code(status: str) -> int:
    """0 solved, 1 failed, 130 stopped by the user (as a shell reports an interrupted command)."""
    return {"solved": 0, "stopped": 130}.get(status, 1)


def run_command(args) -> int:
    summary, _ = execute(options_from(args, args.request, args.data, args.out, parse_acceptance(args.accept),
                                      args.max_steps), quiet=False)
    _report(summary, args.json)
    return exit_code(summary["status"])


def demo_command(args) -> int:
    from jupyter_medagent.imaging.phantom import synth_cardiac

    out = Path(args.out)
    data = out / "data"
    if data.exists() and not (data / "manifest.json").exists():
        raise DataError(data, "exists and is not a medagent synthetic data set; choose another --out")
    started = time.monotonic()
    manifest = synth_cardiac(data, cases=args.cases, seed=0, pitfalls="all")
    print(f"Synthesised {len(manifest['cases'])} cine volumes from {args.cases} patients in {data}, "
          f"with {sum(len(c['pitfalls']) for c in manifest['cases'])} planted pitfalls.", file=sys.stderr)
    summary, backend = execute(options_from(args, DEMO_REQUEST, data, out / "cardiac_demo.ipynb", DEMO_ACCEPTANCE),
                               quiet=False)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["demo"] = demo_checks(manifest, summary, backend)
    _report(summary, args.json)
    return exit_code(summary["status"])


def demo_checks(manifest: dict, summary: dict, backend) -> dict:
    """Compare with the phantom's truth: EF against the manifest, planted pitfalls against what was handled."""
    predicted = summary["metrics"].get("ef_predicted", {})
    errors = {p: abs(ef - manifest["patients"][p]["lv_ef_percent"]) for p, ef in predicted.items() if p in manifest["patients"]}
    planted = {(c["case"], p["kind"]) for c in manifest["cases"] for p in c["pitfalls"]}
    handled = {(f["case"], f["finding"]) for f in getattr(backend, "fixes", [])}
    return {
        "ef_abs_error_vs_truth": round(sum(errors.values()) / len(errors), 2) if errors else None,
        "pitfalls_planted": len(planted),
        "pitfalls_handled": len(planted & handled),
        "pitfalls_missed": sorted(f"{c}:{k}" for c, k in planted - handled),
        "patients": len(manifest["patients"]),
    }


def _report(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=1, default=str))
        return
    print(f"\nStatus: {summary['status']} ({summary['reason']})")
    if summary.get("summary") and summary["summary"] != summary["reason"]:  # a failed run's reason is its summary
        print(summary["summary"])
    split = summary["time_split"]
    print(f"Time: {summary['seconds']} s in all; training {split['training_seconds']} s, everything else "
          f"{round(summary['seconds'] - split['training_seconds'], 1)} s")
    if "demo" in summary:
        demo = summary["demo"]
        print(f"Against the phantom's truth: EF error {demo['ef_abs_error_vs_truth']} points; pitfalls handled "
              f"{demo['pitfalls_handled']}/{demo['pitfalls_planted']}; clinical measures for "
              f"{summary['metrics'].get('patients_reported', 0)} of {demo['patients']} patients")
    print(f"Notebook: {summary['notebook']} (verified by re-running it: {summary['verified']})")
