"""``medagent run`` (a request on a data folder) and ``medagent demo`` (the synthetic cardiac demo)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from jupyter_medagent.contracts.options import add_arguments, from_arguments
from jupyter_medagent.contracts.errors import DataError

DEMO_REQUEST = ("Segment the left ventricle, myocardium and right ventricle in these short-axis cine MRIs "
                "and report the ejection fraction per patient.")
DEMO_ACCEPTANCE = ["dice_mean>=0.90", "ef_abs_error<=3.0"]  # unless --accept says otherwise


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="build, run and verify a pipeline for a plain-language request")
    run.add_argument("request", help="what you want, in plain words")
    run.add_argument("--data", required=True, help="folder of scans")
    run.add_argument("--out", default="medagent.ipynb", help="refined notebook to write (default medagent.ipynb)")
    run.add_argument("--json", action="store_true", help="print one JSON summary object on stdout")
    add_arguments(run)
    run.set_defaults(handler=run_command)
    demo = subparsers.add_parser("demo", help="synthesise cardiac cine data with planted pitfalls and solve it offline")
    demo.add_argument("--out", default="medagent-demo", help="folder for the data and the notebook")
    demo.add_argument("--cases", type=int, default=20, help="number of synthetic patients (default 20)")
    demo.add_argument("--json", action="store_true")
    add_arguments(demo)
    demo.set_defaults(handler=demo_command)


def setup_from(args, request: str, data, notebook, **defaults):
    """The run the parsed command line asks for; ``defaults`` stand where the user gave no value."""
    from jupyter_medagent.session import RunSetup

    given = {name: value for name, value in defaults.items() if not getattr(args, name)}
    return RunSetup(request, str(data), Path.cwd(), str(notebook), from_arguments(args, **given))


def exit_code(status: str) -> int:
    """0 solved, 1 failed, 130 stopped by the user (as a shell reports an interrupted command)."""
    return {"solved": 0, "stopped": 130}.get(status, 1)


def run_command(args) -> int:
    from jupyter_medagent.session import run_session

    summary, _ = run_session(setup_from(args, args.request, args.data, args.out), quiet=False)
    _report(summary, args.json)
    return exit_code(summary["status"])


def demo_command(args) -> int:
    from jupyter_medagent.session import run_session
    from jupyter_medagent.synth.replicas import synth_cardiac

    out = Path(args.out)
    data = out / "data"
    if data.exists() and not (data / "manifest.json").exists():
        raise DataError(data, "exists and is not a medagent synthetic data set; choose another --out")
    started = time.monotonic()
    manifest = synth_cardiac(data, cases=args.cases, seed=0, pitfalls="all")
    print(f"Synthesised {len(manifest['cases'])} cine volumes from {args.cases} patients in {data}, "
          f"with {sum(len(c['pitfalls']) for c in manifest['cases'])} planted pitfalls.", file=sys.stderr)
    summary, backend = run_session(setup_from(args, DEMO_REQUEST, data, out / "cardiac_demo.ipynb",
                                              accept=DEMO_ACCEPTANCE), quiet=False)
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
