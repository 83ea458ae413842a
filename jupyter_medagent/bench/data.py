"""Data for the benchmark's tasks, made on the spot from what ships in wheels (no download).

Each maker writes a data folder and returns the truth the task's judge compares with, which is never
written to disk: the bench's driver keeps it and hands it to the runs, so no agent finds it. Makers
are deterministic in their seed: data made again is the same data.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from collections.abc import Callable

import nibabel as nib
import numpy as np

MAKERS: dict[str, Callable[..., dict[str, Any]]] = {}


def maker(function: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    MAKERS[function.__name__] = function
    return function


@maker
def cardiac_phantom(out: Path, cases: int = 8, seed: int = 0, pitfalls: str | list[str] = "none",
                    layout: str = "nnunet", frames: int = 0) -> dict[str, Any]:
    """The synthetic short-axis cine phantom (synth/phantom.py); truth: each patient's EF, every case and
    the pitfalls planted per case."""
    from jupyter_medagent.synth.replicas import synth_cardiac

    manifest = synth_cardiac(out, cases=cases, seed=seed, pitfalls=pitfalls, layout=layout, frames=frames)
    (out / "manifest.json").unlink()  # the phantom's answer key: the truth returned here is all that is kept
    return {"ef": {p: v["lv_ef_percent"] for p, v in manifest["patients"].items()},
            "cases": [c["case"] for c in manifest["cases"]],
            "pitfalls": [{"case": c["case"], "kind": p["kind"]} for c in manifest["cases"] for p in c["pitfalls"]]}


@maker
def spheres(out: Path, cases: int = 16, size: int = 64, seed: int = 0) -> dict[str, Any]:
    """MONAI's tutorial data (create_test_image_3d): noisy spheres, one foreground class, isotropic 1 mm,
    laid out as nnU-Net does (imagesTr/NAME_0000.nii.gz, labelsTr/NAME.nii.gz)."""
    from monai.data import create_test_image_3d

    rng = np.random.RandomState(seed)
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    for i in range(cases):
        image, label = create_test_image_3d(size, size, size, num_seg_classes=1, channel_dim=None, random_state=rng)
        nib.save(nib.Nifti1Image(image.astype(np.float32), np.eye(4)), str(out / "imagesTr" / f"sphere{i:03d}_0000.nii.gz"))
        nib.save(nib.Nifti1Image(label.astype(np.uint8), np.eye(4)), str(out / "labelsTr" / f"sphere{i:03d}.nii.gz"))
    return {"cases": cases}


@maker
def lesions(out: Path, cases_per_class: int = 40, size: int = 32, seed: int = 0) -> dict[str, Any]:
    """Classification data: noisy volumes with a few soft blobs; the 'lesion' class also holds a small bright one.
    The class is the sub-folder (``out/normal/``, ``out/lesion/``)."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size, size, size)).astype(np.float32)
    classes = {}
    for name in ("normal", "lesion"):
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in range(cases_per_class):
            volume = rng.normal(0.0, 0.25, (size, size, size)).astype(np.float32)
            for _ in range(rng.integers(2, 5)):  # soft anatomy-like blobs in both classes
                centre, radius = rng.uniform(6, size - 6, 3), rng.uniform(3, 6)
                volume += 0.6 * np.exp(-((grid - centre[:, None, None, None]) ** 2).sum(0) / (2 * radius**2))
            if name == "lesion":
                centre, radius = rng.uniform(5, size - 5, 3), rng.uniform(1.5, 2.5)
                volume += 1.5 * (((grid - centre[:, None, None, None]) ** 2).sum(0) <= radius**2)
            nib.save(nib.Nifti1Image(volume, np.eye(4)), str(out / name / f"{name}{i:03d}.nii.gz"))
            classes[f"{name}{i:03d}"] = name
    return {"classes": classes}


@maker
def brain_mni(out: Path, subjects: int = 6, seed: int = 0, wrong_spacing: int = 1, flipped: int = 0) -> dict[str, Any]:
    """Real anatomy: nilearn's MNI152 T1 template and brain mask (2 mm), one subject per head size (voxel size
    scaled 0.9-1.1, so brain volumes differ), plain pairs ``sub-NN.nii.gz`` + ``sub-NN_mask.nii.gz``.

    ``wrong_spacing`` subjects get a mask whose header claims 1 mm voxels (a common export slip): a volume
    taken from the mask's own header is 8 times too small. The next ``flipped`` subjects get their mask
    flipped front to back. Truth: each subject's brain volume in mL, the subjects and the pitfalls planted.
    """
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

    template, mask = load_mni152_template(resolution=2), load_mni152_brain_mask(resolution=2)
    image = np.asanyarray(template.dataobj).astype(np.float32)
    brain = (np.asanyarray(mask.dataobj) > 0).astype(np.uint8)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    volumes, planted = {}, []
    for n in range(1, subjects + 1):
        subject = f"sub-{n:02d}"
        scale = rng.uniform(0.9, 1.1)
        affine = template.affine @ np.diag([scale, scale, scale, 1.0])
        noisy = image * rng.uniform(0.8, 1.2) + rng.normal(0, 0.02 * float(image.max()), image.shape).astype(np.float32)
        nib.save(nib.Nifti1Image(noisy, affine), str(out / f"{subject}.nii.gz"))
        mask_affine = affine
        if n <= wrong_spacing:
            mask_affine = affine @ np.diag([0.5 / scale, 0.5 / scale, 0.5 / scale, 1.0])
            planted.append({"case": subject, "kind": "spacing_mismatch"})
        stored = brain
        if wrong_spacing < n <= wrong_spacing + flipped:
            stored = np.flip(brain, axis=1).copy()
            planted.append({"case": subject, "kind": "orientation_flip"})
        nib.save(nib.Nifti1Image(stored, mask_affine), str(out / f"{subject}_mask.nii.gz"))
        volumes[subject] = float(brain.sum() * abs(np.linalg.det(affine[:3, :3])) / 1000.0)
    return {"brain_ml": volumes, "cases": list(volumes), "pitfalls": planted}


@maker
def ct_vertebra(out: Path, patients: int = 8, slices: int = 8, seed: int = 0, raw_offset: int = 1) -> dict[str, Any]:
    """Real CT: pydicom's CT_small.dcm (an axial slice through a vertebra, in Hounsfield units) moved, turned
    and scaled a little per patient and slice, written as a DICOM series per patient with the bone (> 250 HU,
    the vertebra and ribs) as a DICOM SEG. ``raw_offset`` patients store raw values + 1024 with a rescale
    intercept of -1024, as many scanners do: only a reader that applies the rescale sees the same HU."""
    import pydicom
    from pydicom.data import get_testdata_file
    from scipy import ndimage

    from jupyter_medagent.imaging.dicom_export import write_seg, write_series
    from jupyter_medagent.imaging.volume import Volume

    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = source.pixel_array.T.astype(np.float32) * float(source.RescaleSlope) + float(source.RescaleIntercept)
    spacing = [float(v) for v in source.PixelSpacing]
    rng = np.random.default_rng(seed)
    affine = np.diag([spacing[1], spacing[0], 5.0, 1.0])
    for n in range(1, patients + 1):
        angle, shift, scale = rng.uniform(-12, 12), rng.uniform(-8, 8, 2), rng.uniform(0.9, 1.1)
        stack = []
        for k in range(slices):  # the vertebra narrows and moves a little from slice to slice
            s = scale * (1.0 - 0.02 * abs(k - slices / 2))
            plane = ndimage.rotate(hu, angle + rng.uniform(-2, 2), reshape=False, order=1, cval=-1000.0)
            centre = np.array(plane.shape) / 2
            matrix = np.eye(2) / s
            offset = centre - matrix @ centre - shift - rng.uniform(-1, 1, 2)
            stack.append(ndimage.affine_transform(plane, matrix, offset, order=1, cval=-1000.0))
        volume = np.stack(stack, axis=2) + rng.normal(0, 15, (*hu.shape, slices)).astype(np.float32)
        bone = ndimage.binary_opening(ndimage.gaussian_filter(volume, 0.7) > 250, iterations=1).astype(np.uint8)
        folder = out / f"patient{n:02d}"
        # Names the redactor would find in paths (it scrubs identifying tags wherever they appear) are avoided.
        files = write_series(Volume(volume, affine), folder / "CT", modality="CT", patient_name="Anonymous^",
                             patient_id=f"CT{n:04d}")
        if n <= raw_offset:
            for path in files:
                ds = pydicom.dcmread(path)
                ds.PixelData = (ds.pixel_array.astype(np.int32) + 1024).astype(np.int16).tobytes()
                ds.RescaleIntercept = -1024
                ds.save_as(path, enforce_file_format=True)
        write_seg(Volume(bone, affine), files, folder / "SEG" / "bone.dcm", {1: "bone"})
    return {"patients": patients}


@maker
def chest_xray(out: Path, per_class: int = 16, size: int = 64, seed: int = 0, pitfalls: str | list[str] = "none") -> dict[str, Any]:
    """Chest radiographs as the Kaggle set ships them (``{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``,
    synth/phantom2d.py); truth: each picture's class and split, and the pitfalls planted."""
    from jupyter_medagent.synth.phantom2d import synth_xray

    manifest = synth_xray(out, per_class=per_class, size=size, seed=seed, pitfalls=pitfalls)
    (out / "manifest.json").unlink()
    return {"classes": {c["case"]: c["class"] for c in manifest["cases"]}, "cases": [c["case"] for c in manifest["cases"]],
            "pitfalls": manifest["pitfalls"]}


@maker
def lesion_pictures(out: Path, cases: int = 24, size: int = 64, seed: int = 0, style: str = "busi",
                    pitfalls: str | list[str] = "none") -> dict[str, Any]:
    """2D pictures with lesion masks laid out as Kvasir-SEG, ISIC or BUSI (synth/phantom2d.py); truth: the
    cases and the pitfalls planted."""
    from jupyter_medagent.synth.phantom2d import synth_seg2d

    manifest = synth_seg2d(out, cases=cases, size=size, seed=seed, style=style, pitfalls=pitfalls)
    (out / "manifest.json").unlink()
    return {"cases": [c["case"] for c in manifest["cases"]], "pitfalls": manifest["pitfalls"]}


@maker
def itk_volumes(out: Path, cases: int = 8, size: int = 48, seed: int = 0, style: str = "mha") -> dict[str, Any]:
    """3D volumes with one labelled structure as MetaImage or a 3D Slicer export (synth/phantom2d.py)."""
    from jupyter_medagent.synth.phantom2d import synth_itk

    manifest = synth_itk(out, cases=cases, size=size, seed=seed, style=style)
    (out / "manifest.json").unlink()
    return {"cases": [c["case"] for c in manifest["cases"]], "pitfalls": []}


def make_data(maker_name: str, params: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The task's data made afresh in ``folder`` (what was there, perhaps cut short, goes) and its truth, for
    the caller to keep: the truth is on no disk, so the data is made again by each bench that needs it."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return MAKERS[maker_name](folder, **params)
