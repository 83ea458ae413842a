"""``medagent synth cardiac OUT``: write the synthetic cardiac cine data set."""

from __future__ import annotations

import json

from jupyter_medagent.errors import MedagentError


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="write a synthetic data set with known truth")
    kinds = parser.add_subparsers(dest="dataset", required=True)
    cardiac = kinds.add_parser("cardiac", help="short-axis cine MRI, ED and ES (or whole cines) per patient")
    cardiac.add_argument("out", help="output folder (the layout's files and manifest.json with the truth)")
    cardiac.add_argument("--cases", type=int, default=20, help="number of patients (default 20)")
    cardiac.add_argument("--seed", type=int, default=0)
    cardiac.add_argument("--pitfalls", default="none", help="none, all, or a comma-separated list of pitfall kinds")
    cardiac.add_argument("--layout", default="nnunet", choices=("nnunet", "acdc", "mnms", "msd"),
                         help="how the files are laid out: nnunet (imagesTr/labelsTr, default), or as ACDC, M&Ms or "
                              "the Decathlon distribute them")
    cardiac.add_argument("--frames", type=int, default=0, help="frames per cine (0: ED and ES only; acdc/mnms: 12)")
    cardiac.add_argument("--test-cases", type=int, default=0, help="further patients without labels")
    cardiac.set_defaults(handler=run)


def run(args) -> int:
    from jupyter_medagent.imaging.phantom import synth_cardiac

    try:
        manifest = synth_cardiac(args.out, cases=args.cases, seed=args.seed, pitfalls=args.pitfalls, layout=args.layout,
                                 frames=args.frames, test_cases=args.test_cases)
    except ValueError as exc:
        raise MedagentError(str(exc)) from None
    planted = [(c["case"], p["kind"]) for c in manifest["cases"] for p in c["pitfalls"]]
    print(f"wrote {len(manifest['cases'])} cases from {len(manifest['patients'])} patients to {args.out}")
    if planted:
        print("planted pitfalls: " + json.dumps(dict(planted)))
    return 0
