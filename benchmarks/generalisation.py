"""The unchanged offline agent on tasks it was not tuned on, each next to a baseline run on the same data.

1. 3D segmentation of MONAI's synthetic spheres (create_test_image_3d). Baseline: MONAI's
   tutorial recipe, a 3D UNet with Dice loss, given the same training wall time as the agent.
2. Measurement only: LV volumes and ejection fraction from given labels of the cardiac phantom
   with planted pitfalls. Baseline: the same measurement straight from the raw files, as a script
   that trusts its input would do it. Both are compared with the phantom's truth.
3. Classification: synthetic volumes with and without a small bright lesion, the class given by
   the sub-folder. Baseline: a hand-made detector, the volume's 99.9th intensity percentile against
   the threshold that best separates the training cases.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from jupyter_medagent.bench.data import lesions, spheres
from jupyter_medagent.session import RunOptions, run_session


def spheres_baseline(data: Path, test_cases: set[str], seconds: float) -> float:
    """MONAI tutorial-style 3D UNet (sigmoid + Dice loss) trained for ``seconds``; mean Dice on the test cases."""
    import torch
    from monai.losses import DiceLoss
    from monai.networks.nets import UNet

    from jupyter_medagent.imaging import dice_per_label, load_volume

    torch.manual_seed(0)
    torch.set_num_threads(2)
    ids = sorted(p.name[:-len("_0000.nii.gz")] for p in (data / "imagesTr").iterdir())

    def load(i):
        return load_volume(data / "imagesTr" / f"{i}_0000.nii.gz").array, load_volume(data / "labelsTr" / f"{i}.nii.gz").array

    train = [load(i) for i in ids if i not in test_cases]
    model = UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
                 num_res_units=2)
    loss_fn = DiceLoss(sigmoid=True)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    started, step = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        image, label = train[step % len(train)]
        x = torch.from_numpy(image[None, None].astype(np.float32))
        y = torch.from_numpy(label[None, None].astype(np.float32))
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
        step += 1
    model.eval()
    scores = []
    with torch.no_grad():
        for i in sorted(test_cases):
            image, label = load(i)
            pred = (torch.sigmoid(model(torch.from_numpy(image[None, None].astype(np.float32))))[0, 0] > 0.5).numpy()
            scores.append(dice_per_label(pred.astype(np.uint8), label, labels=[1])[1])
    return float(np.mean(scores))


def naive_ef(data: Path, manifest: dict) -> dict[str, float]:
    """EF straight from the raw label files: label 3 as LV, the label header's voxel size, no checks."""
    from jupyter_medagent.imaging import ejection_fraction, load_volume, volumes_ml

    result = {}
    for patient in manifest["patients"]:
        volumes = {}
        for phase in ("ED", "ES"):
            label = load_volume(data / "labelsTr" / f"{patient}_{phase}.nii.gz")
            volumes[phase] = volumes_ml(np.rint(label.array), label.spacing, labels=[3])[3]
        if volumes["ED"] > 0:
            result[patient] = ejection_fraction(volumes["ED"], volumes["ES"])
    return result


def held_out(summary: dict) -> set[str]:
    """The held-out cases of a run, read from the printed split in its notebook."""
    notebook = json.loads(Path(summary["notebook"]).read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
            if "held-out patients" in text:
                return set(text.split(": ")[-1].strip().split(", "))
    raise ValueError(f"no patient split found in {summary['notebook']}")


def lesion_baseline(data: Path, test_cases: set[str]) -> float:
    """Balanced accuracy of a threshold on each volume's 99.9th percentile, tuned on the training cases."""
    from jupyter_medagent.imaging import load_volume

    scores = {p.name[: -len(".nii.gz")]: (p.parent.name, float(np.percentile(load_volume(p).array, 99.9)))
              for p in sorted(data.glob("*/*.nii.gz"))}
    train = [v for k, v in scores.items() if k not in test_cases]
    best = max((t for _, t in train), key=lambda t: np.mean([(s > t) == (c == "lesion") for c, s in train]))
    test = [v for k, v in scores.items() if k in test_cases]
    return float(np.mean([np.mean([(s > best) == (c == "lesion") for c, s in test if c == name]) for name in ("lesion", "normal")]))


def _classified(summary: dict) -> list[dict]:
    """Held-out cases of a classification run, from the results table in its notebook."""
    notebook = json.loads(Path(summary["notebook"]).read_text())
    rows = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = "".join(output.get("data", {}).get("text/markdown", ""))  # nbformat may store a list of lines
            if "held-out case" in text:
                rows += [{"case": line.split("|")[1].strip()} for line in text.splitlines()[2:] if line.startswith("|")]
    return rows


def main() -> None:
    from jupyter_medagent.synth.replicas import synth_cardiac

    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spheres(tmp / "spheres")
        summary, _ = run_session(RunOptions("Segment the spheres in these volumes.", str(tmp / "spheres"),
                                        notebook=str(tmp / "spheres.ipynb")), quiet=True)
        baseline = spheres_baseline(tmp / "spheres", held_out(summary), summary["time_split"]["training_seconds"])
        rows.append(("spheres 3D (MONAI synthetic)", summary["status"], f"Dice {summary['dice_mean']:.3f}",
                     f"3D UNet tutorial, same training time: Dice {baseline:.3f}"))

        cardiac = tmp / "cardiac"
        manifest = synth_cardiac(cardiac, cases=12, seed=1, pitfalls="all")
        summary, _ = run_session(RunOptions("Compute the LV volumes and ejection fraction of each patient from the given labels.",
                                        str(cardiac), notebook=str(tmp / "measure.ipynb")), quiet=True)
        truth = {p: v["lv_ef_percent"] for p, v in manifest["patients"].items()}
        measured = summary["metrics"].get("ef_measured", {})
        agent_err = np.mean([abs(measured[p] - truth[p]) for p in measured])
        naive = naive_ef(cardiac, manifest)
        naive_err = np.mean([abs(naive[p] - truth[p]) for p in naive])
        rows.append(("measurement only (EF from given labels)", summary["status"],
                     f"EF error {agent_err:.2f} points on {len(measured)} patients",
                     f"raw files, no checks: EF error {naive_err:.2f} points on {len(naive)} patients"))
        lesions(tmp / "lesions")
        summary, _ = run_session(RunOptions("Classify these scans: which ones show a lesion?", str(tmp / "lesions"),
                                        notebook=str(tmp / "classify.ipynb")), quiet=True)
        test_cases = {c["case"] for c in _classified(summary)}
        rows.append(("classification (lesion vs normal)", summary["status"],
                     f"balanced accuracy {summary['metrics'].get('balanced_accuracy', float('nan')):.3f}",
                     f"99.9th-percentile threshold: balanced accuracy {lesion_baseline(tmp / 'lesions', test_cases):.3f}"))
    print(f"{'task':42s} {'status':8s} {'agent':36s} baseline (same run)")
    for task, status, agent, base in rows:
        print(f"{task:42s} {status:8s} {agent:36s} {base}")


if __name__ == "__main__":
    main()
