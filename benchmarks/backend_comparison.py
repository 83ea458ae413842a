"""Backends compared on one task worded three ways: success rate, cost, cost per solved task,
and how much success depends on the wording.

    .venv/bin/python benchmarks/backend_comparison.py offline openai:smollm2@http://127.0.0.1:8090/v1

The task: LV volumes and ejection fraction from given labels on a 6-patient phantom with planted
pitfalls (flipped and permuted labels, a swapped convention, a rescaled image). A run counts as
solved only if it says so, its notebook re-ran, and its EF is within 3 points of the phantom's
truth for every patient it reports, with at least 4 of 6 patients reported. Hosted models are
not reachable here; pass their selectors where they are.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from jupyter_medagent.cli.run import execute
from jupyter_medagent.session import RunOptions
from jupyter_medagent.imaging.phantom import synth_cardiac

WORDINGS = {
    "expert": ("Measure LV end-diastolic and end-systolic cavity volumes from the provided ACDC-convention labels, "
               "after checking orientation and label conventions, and report the LV ejection fraction per patient."),
    "ordinary": "Compute the LV volumes and ejection fraction of each patient from the given labels.",
    "vague": "ejection fraction for each patient from the labels please",
}
EF_TOLERANCE, MIN_PATIENTS = 3.0, 4


def judged(summary: dict, truth: dict[str, float]) -> tuple[bool, str]:
    measured = summary["metrics"].get("ef_measured") or {}
    if summary["status"] != "solved":
        return False, summary["reason"][:90]
    if not summary["reexecuted_ok"]:
        return False, "notebook did not re-run"
    errors = [abs(ef - truth[p]) for p, ef in measured.items() if p in truth]
    if len(errors) < MIN_PATIENTS:
        return False, f"only {len(errors)} patients reported"
    if max(errors) > EF_TOLERANCE:
        return False, f"EF off by up to {max(errors):.1f} points"
    return True, f"EF error mean {statistics.mean(errors):.2f}, max {max(errors):.2f} points"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="*", default=["offline"])
    parser.add_argument("--max-steps", type=int, default=30)
    parser.add_argument("--max-cost", type=float, default=2.0, help="per run, USD")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        manifest = synth_cardiac(data, cases=6, seed=8,
                                 pitfalls=["orientation_flip", "axis_permutation", "label_convention", "intensity_scale"])
        truth = {p: v["lv_ef_percent"] for p, v in manifest["patients"].items()}
        for selector in args.backends:
            for wording, request in WORDINGS.items():
                summary, _ = execute(RunOptions(request, str(data), notebook=str(Path(tmp) / f"{len(rows)}.ipynb"),
                                                backend=selector, max_steps=args.max_steps, max_cost=args.max_cost),
                                     quiet=True)
                ok, why = judged(summary, truth)
                rows.append({"backend": selector, "wording": wording, "solved": ok, "why": why, **{
                    k: summary[k] for k in ("seconds", "steps", "tokens", "cost_usd")}})
                print(f"{selector[:40]:40s} {wording:8s} {'SOLVED' if ok else 'failed':6s} {summary['steps']:3d} steps "
                      f"{summary['seconds']:6.1f} s {summary['tokens']:7d} tok ${summary['cost_usd']:.4f}  {why}", flush=True)
    print(f"\n{'backend':40s} {'success':>8s} {'mean s':>7s} {'tokens':>8s} {'cost $':>8s} {'$/solved':>9s}  wordings solved")
    for selector in args.backends:
        mine = [r for r in rows if r["backend"] == selector]
        solved = sum(r["solved"] for r in mine)
        cost = sum(r["cost_usd"] for r in mine)
        per_solved = f"{cost / solved:.4f}" if solved else "-"
        wordings = " ".join(f"{r['wording']}:{'y' if r['solved'] else 'n'}" for r in mine)
        print(f"{selector[:40]:40s} {solved}/{len(mine):<6d} {statistics.mean(r['seconds'] for r in mine):7.1f} "
              f"{sum(r['tokens'] for r in mine):8d} {cost:8.4f} {per_solved:>9s}  {wordings}")


if __name__ == "__main__":
    main()
