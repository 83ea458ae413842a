"""``medagent synth cardiac|xray|seg2d|nih|medmnist|itk OUT``: write a synthetic data set (the cardiac cine phantom, 2D
radiographs in class folders, 2D pictures with masks, ITK volumes) with its truth in manifest.json."""

from __future__ import annotations

import json

from jupyter_medagent.contracts.errors import MedagentError
from jupyter_medagent.synth.phantom2d import SEG2D_PITFALLS, XRAY_PITFALLS


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

    xray = kinds.add_parser("xray", help="chest radiographs in class folders with train/val/test splits "
                                         "(the Kaggle chest X-ray layout)")
    xray.add_argument("out")
    xray.add_argument("--per-class", type=int, default=16, help="training images per class (default 16)")
    xray.add_argument("--size", type=int, default=64, help="pixels a side (default 64)")
    xray.add_argument("--seed", type=int, default=0)
    xray.add_argument("--pitfalls", default="none", help="none, all, or some of: " + ", ".join(XRAY_PITFALLS))
    xray.set_defaults(handler=run_2d, maker="synth_xray")
    seg2d = kinds.add_parser("seg2d", help="pictures with lesion masks, laid out as Kvasir-SEG, ISIC or BUSI")
    seg2d.add_argument("out")
    seg2d.add_argument("--style", default="kvasir", choices=("kvasir", "isic", "busi"))
    seg2d.add_argument("--cases", type=int, default=24)
    seg2d.add_argument("--size", type=int, default=64)
    seg2d.add_argument("--seed", type=int, default=0)
    seg2d.add_argument("--pitfalls", default="none", help="none, all, or some of: " + ", ".join(SEG2D_PITFALLS))
    seg2d.set_defaults(handler=run_2d, maker="synth_seg2d")
    medmnist = kinds.add_parser("medmnist", help="a MedMNIST-style .npz archive (2D radiographs or 3D volumes)")
    medmnist.add_argument("out")
    medmnist.add_argument("--per-class", type=int, default=20, help="training images per class (default 20)")
    medmnist.add_argument("--size", type=int, default=28)
    medmnist.add_argument("--dims", type=int, default=2, choices=(2, 3))
    medmnist.add_argument("--seed", type=int, default=0)
    medmnist.set_defaults(handler=run_2d, maker="synth_medmnist")
    nih = kinds.add_parser("nih", help="radiographs with multi-label findings in a table (the NIH ChestX-ray14 layout)")
    nih.add_argument("out")
    nih.add_argument("--patients", type=int, default=30)
    nih.add_argument("--per-patient", type=int, default=2, help="pictures per patient (follow-ups)")
    nih.add_argument("--size", type=int, default=64)
    nih.add_argument("--seed", type=int, default=0)
    nih.set_defaults(handler=run_2d, maker="synth_nih")
    itk = kinds.add_parser("itk", help="3D volumes with labels as MetaImage (.mha, .mhd + .raw) or a 3D Slicer export")
    itk.add_argument("out")
    itk.add_argument("--style", default="mha", choices=("mha", "mhd", "slicer"))
    itk.add_argument("--cases", type=int, default=8)
    itk.add_argument("--size", type=int, default=48)
    itk.add_argument("--seed", type=int, default=0)
    itk.set_defaults(handler=run_2d, maker="synth_itk")


def run(args) -> int:
    from jupyter_medagent.synth.replicas import synth_cardiac

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


def run_2d(args) -> int:
    from jupyter_medagent.synth import phantom2d

    options = {k: v for k, v in vars(args).items() if k in ("per_class", "size", "seed", "pitfalls", "style", "cases", "dims", "patients", "per_patient")}
    try:
        manifest = getattr(phantom2d, args.maker)(args.out, **options)
    except ValueError as exc:
        raise MedagentError(str(exc)) from None
    print(f"wrote {len(manifest['cases'])} cases ({manifest['layout']} layout) to {args.out}")
    if manifest["pitfalls"]:
        print("planted pitfalls: " + json.dumps({p["case"]: p["kind"] for p in manifest["pitfalls"]}))
    return 0
