"""``medagent synth cardiac OUT``: write the synthetic cardiac cine data set."""

from __future__ import annotations

import json

from jupyter_medagent.errors import MedagentError


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="write a synthetic data set with known truth")
    kinds = parser.add_subparsers(dest="dataset", required=True)
    cardiac = kinds.add_parser("cardiac", help="short-axis cine MRI, ED and ES per patient, ACDC labels")
    cardiac.add_argument("out", help="output folder (imagesTr/, labelsTr/, manifest.json)")
    cardiac.add_argument("--cases", type=int, default=20, help="number of patients (default 20)")
    cardiac.add_argument("--seed", type=int, default=0)
    cardiac.add_argument("--pitfalls", default="none", help="none, all, or a comma-separated list of pitfall kinds")
    cardiac.set_defaults(handler=run)


def run(args) -> int:
    from jupyter_medagent.imaging.phantom import synth_cardiac

    try:
        manifest = synth_cardiac(args.out, cases=args.cases, seed=args.seed, pitfalls=args.pitfalls)
    except ValueError as exc:
        raise MedagentError(str(exc)) from None
    planted = [(c["case"], p["kind"]) for c in manifest["cases"] for p in c["pitfalls"]]
    print(f"wrote {len(manifest['cases'])} cases from {len(manifest['patients'])} patients to {args.out}")
    if planted:
        print("planted pitfalls: " + json.dumps(dict(planted)))
    return 0
