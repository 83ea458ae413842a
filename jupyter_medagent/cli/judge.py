"""``medagent judge --image I --label L``: findings and a verdict for one image/label pair."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_medagent.cli.inspect import format_findings


def register(subparsers) -> None:
    parser = subparsers.add_parser("judge", help="quality findings for one image/label pair")
    parser.add_argument("--image", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--convention", choices=["acdc", "mnms"], help="expected cardiac label convention")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from jupyter_medagent.imaging.io import load_volume
    from jupyter_medagent.judge.quantitative import check_pair, verdict_of

    image = load_volume(args.image, expect_ndim=3)
    label = load_volume(args.label, expect_ndim=3)
    findings = [f.to_dict() for f in check_pair(image, label, Path(args.label).name, convention=args.convention)]
    verdict = verdict_of(findings)
    if args.json:
        print(json.dumps({"image": args.image, "label": args.label, "verdict": verdict, "findings": findings}, indent=1))
    else:
        print(format_findings(findings))
    return 0
