"""The cardiac task asked three ways (expert-precise, ordinary, vague one-liner), offline, same data."""

from __future__ import annotations

import tempfile
from pathlib import Path

from jupyter_medagent.cli.run import DEMO_ACCEPTANCE, execute
from jupyter_medagent.session import RunOptions
from jupyter_medagent.imaging.phantom import synth_cardiac

WORDINGS = {
    "expert": ("Segment the LV cavity, LV myocardium and RV cavity (ACDC labels) on the ED and ES frames of these "
               "short-axis cine stacks with a patient-level split; report Dice and HD95 on held-out patients and the "
               "LV ejection fraction per patient."),
    "ordinary": "Segment the left ventricle, myocardium and right ventricle in these cine MRIs and give me the EF.",
    "vague": "analyse these heart scans",
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        synth_cardiac(data, cases=16, seed=2, pitfalls="all")
        print(f"{'wording':9s} {'status':7s} {'dice_mean':>9s} {'ef_err':>7s} {'steps':>5s} {'seconds':>7s}  request")
        for name, request in WORDINGS.items():
            summary, _ = execute(RunOptions(request, str(data), notebook=str(Path(tmp) / f"{name}.ipynb"),
                                            acceptance=DEMO_ACCEPTANCE), quiet=True)
            dice = summary["dice_mean"]
            ef = summary["ef_abs_error"]
            print(f"{name:9s} {summary['status']:7s} {dice if dice is None else f'{dice:.3f}':>9} "
                  f"{ef if ef is None else f'{ef:.2f}':>7} {summary['steps']:5d} {summary['seconds']:7.1f}  {request[:60]}")
            if summary["status"] != "solved":
                print(f"          reason: {summary['reason']}")


if __name__ == "__main__":
    main()
