"""Synthetic 2D data sets laid out as the public ones are, with the 2D pitfalls plantable and the truth known:

- ``synth_xray``: chest radiographs in class folders with train/val/test splits (the Kaggle chest X-ray
  layout, ``{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``); pneumonia is a bright opacity in one lung.
- ``synth_seg2d``: pictures with lesion masks, as Kvasir-SEG (``images/`` + ``masks/``, RGB JPEG), ISIC
  (``ISIC_0000001.jpg`` + ``ISIC_0000001_segmentation.png``) or BUSI (``benign/benign (1).png`` +
  ``benign (1)_mask.png``, a second lesion in ``_mask_1``) lay them out.
- ``synth_itk``: 3D volumes with labels as MetaImage (``images/`` + ``labels/`` .mha, or .mhd + .raw) or as a
  3D Slicer export (``Patient01/Scan.nrrd`` + ``Segmentation.seg.nrrd`` with named segments).

Pictures are small (64 x 64 by default) so a whole pipeline runs in a minute on one core. Each maker returns
a manifest (also written as manifest.json) naming every case and every pitfall planted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

XRAY_PITFALLS = ("leakage", "mixed_channels", "class_imbalance", "small_validation")
SEG2D_PITFALLS = ("lossy_mask", "mask_size", "unreadable", "leakage", "mixed_channels")


def _pitfalls(pitfalls, known: tuple[str, ...]) -> tuple[str, ...]:
    if pitfalls in (None, "", "none"):
        return ()
    chosen = known if pitfalls == "all" else tuple(p.strip() for p in (pitfalls.split(",") if isinstance(pitfalls, str)
                                                                         else pitfalls) if p.strip())
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ValueError(f"unknown pitfall kind(s) {unknown}; expected some of {list(known)}")
    return chosen


def _fresh(out) -> Path:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def _chest(rng: np.random.Generator, size: int, pneumonia: bool) -> np.ndarray:
    """A chest radiograph in miniature: bright body, two dark lungs, ribs; pneumonia a soft opacity in a lung."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = 0.55 + 0.1 * rng.standard_normal() + 0.0 * x
    for side in (0.3, 0.7):
        cx, cy = side + rng.uniform(-0.03, 0.03), 0.5 + rng.uniform(-0.04, 0.04)
        lung = ((x - cx) / 0.15) ** 2 + ((y - cy) / 0.3) ** 2 <= 1
        image = np.where(lung, 0.2, image)
    image = image + 0.06 * np.sin(y * size * 0.9 + rng.uniform(0, 6))  # ribs
    if pneumonia:
        cx, cy = rng.choice([0.3, 0.7]) + rng.uniform(-0.05, 0.05), rng.uniform(0.35, 0.65)
        radius = rng.uniform(0.08, 0.13)
        image = image + 0.45 * np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2)))
    image = image + rng.normal(0, 0.04, image.shape)
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def _save(pixels: np.ndarray, path: Path, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)


def synth_xray(out, *, per_class: int = 16, size: int = 64, seed: int = 0, pitfalls="none") -> dict:
    """Kaggle chest X-ray layout: ``{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``, one image per patient
    (``IM-0007-0001.jpeg``, ``person7_bacteria_1.jpeg``). ``per_class`` images per class in training, a quarter
    of that in val and in test. Pitfalls: leakage (training images copied into test under new names),
    mixed_channels (some saved as RGB), class_imbalance (four times as many pneumonia images in training),
    small_validation (two images per class in val)."""
    kinds = _pitfalls(pitfalls, XRAY_PITFALLS)
    rng = np.random.default_rng(seed)
    out = _fresh(out)
    counts = {"train": per_class, "val": max(5, per_class // 4), "test": max(5, per_class // 4)}
    if "small_validation" in kinds:
        counts["val"] = 2
    manifest = {"layout": "chest_xray", "cases": [], "pitfalls": []}
    patient = 0
    written = {}
    for split, n in counts.items():
        for name in ("NORMAL", "PNEUMONIA"):
            total = n * 4 if (name == "PNEUMONIA" and split == "train" and "class_imbalance" in kinds) else n
            for _ in range(total):
                patient += 1
                stem = f"IM-{patient:04d}-0001" if name == "NORMAL" else f"person{patient}_bacteria_{patient * 3}"
                pixels = _chest(rng, size, name == "PNEUMONIA")
                path = out / split / name / f"{stem}.jpeg"
                _save(pixels, path, quality=95)
                written[stem] = (pixels, split, name)
                manifest["cases"].append({"case": stem, "split": split, "class": name})
    stems = [c["case"] for c in manifest["cases"]]
    if "class_imbalance" in kinds:
        manifest["pitfalls"].append({"case": "dataset", "kind": "class_imbalance"})
    if "small_validation" in kinds:
        manifest["pitfalls"].append({"case": "dataset", "kind": "small_validation"})
    if "mixed_channels" in kinds:
        for stem in rng.choice([s for s in stems if written[s][1] == "train"], size=2, replace=False):
            pixels, split, name = written[stem]
            _save(np.repeat(pixels[..., None], 3, axis=2), out / split / name / f"{stem}.jpeg", quality=95)
            manifest["pitfalls"].append({"case": str(stem), "kind": "mixed_channels"})
    if "leakage" in kinds:
        for i, stem in enumerate(rng.choice([s for s in stems if written[s][1] == "train"], size=2, replace=False)):
            _, _, name = written[stem]
            copy = f"IM-{9000 + i:04d}-0001" if name == "NORMAL" else f"person{9000 + i}_virus_{i}"
            shutil.copyfile(out / "train" / name / f"{stem}.jpeg", out / "test" / name / f"{copy}.jpeg")
            manifest["cases"].append({"case": copy, "split": "test", "class": name})
            manifest["pitfalls"].append({"case": copy, "kind": "leakage", "duplicate_of": str(stem)})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _lesion_picture(rng: np.random.Generator, size: int, rgb: bool, second: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """A textured background with one (or two) darker, rough-edged lesions; their masks (bool)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 0.6 + 0.08 * np.sin(x / rng.uniform(3, 6)) * np.cos(y / rng.uniform(3, 6)) + rng.normal(0, 0.05, (size, size))
    masks = []
    # BUSI's second lesion sits apart from the first: one in each half of the picture.
    for low, high in ((0.25, 0.42), (0.58, 0.75)) if second else ((0.3, 0.7),):
        cx, cy = rng.uniform(low, high) * size, rng.uniform(0.3, 0.7) * size
        rx, ry = rng.uniform(0.08, 0.12 if second else 0.22, 2) * size
        angle = np.arctan2(y - cy, x - cx)
        wobble = 1 + 0.12 * np.sin(3 * angle + rng.uniform(0, 6))
        masks.append(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= wobble**2)
    lesion = np.any(masks, axis=0)
    image = np.where(lesion, base - 0.35, base)
    if rgb:
        tint = np.stack([image * 1.0, image * 0.75, image * 0.7], axis=-1)
        tint[lesion] *= [1.2, 0.7, 0.7]  # lesions are redder (endoscopy, dermoscopy)
        image = tint
    return np.clip(image * 255, 0, 255).astype(np.uint8), masks


def synth_seg2d(out, *, cases: int = 24, size: int = 64, seed: int = 0, style: str = "kvasir", pitfalls="none") -> dict:
    """2D segmentation pictures with masks, laid out as ``style`` (kvasir, isic or busi) ships them. Masks are
    0/255 PNGs (Kvasir's are JPEGs). Pitfalls: lossy_mask (a mask saved as a low-quality JPEG), mask_size (a
    mask of another size than its image), unreadable (a truncated picture), leakage (a picture copied under
    another name), mixed_channels (a grayscale picture among RGB ones, or the reverse)."""
    if style not in ("kvasir", "isic", "busi"):
        raise ValueError(f"unknown style {style!r}; expected kvasir, isic or busi")
    kinds = _pitfalls(pitfalls, SEG2D_PITFALLS)
    rng = np.random.default_rng(seed)
    out = _fresh(out)
    rgb = style != "busi"
    manifest = {"layout": style, "cases": [], "pitfalls": []}
    planted = {}
    order = list(rng.permutation(cases))
    for kind in kinds:
        planted[f"case{order.pop():03d}"] = kind
    for i in range(cases):
        key = f"case{i:03d}"
        second = style == "busi" and i % 4 == 1
        pixels, masks = _lesion_picture(rng, size, rgb, second)
        kind = planted.get(key)
        if kind == "mixed_channels":
            pixels = pixels.mean(axis=2).astype(np.uint8) if rgb else np.repeat(pixels[..., None], 3, axis=2)
        image_path, mask_paths = _seg2d_paths(out, style, i, len(masks))
        _save(pixels, image_path, **({"quality": 95} if image_path.suffix == ".jpg" else {}))
        for mask, path in zip(masks, mask_paths):
            stored = (mask * 255).astype(np.uint8)
            if kind == "mask_size":
                stored = np.asarray(Image.fromarray(stored).resize((size + 16, size), Image.NEAREST))
            if kind == "lossy_mask" or path.suffix == ".jpg":
                path = path.with_suffix(".jpg")
                _save(stored, path, quality=30 if kind == "lossy_mask" else 95)
            else:
                _save(stored, path)
        stem = image_path.stem
        if kind == "unreadable":
            data = image_path.read_bytes()
            image_path.write_bytes(data[: len(data) // 3])
        manifest["cases"].append({"case": stem, "image": str(image_path.relative_to(out)),
                                  "masks": [str(p.relative_to(out)) for p in mask_paths],
                                  "lesion_pixels": int(np.any(masks, axis=0).sum())})
        if kind:
            manifest["pitfalls"].append({"case": stem, "kind": kind})
    if "leakage" in kinds:
        plain = {p["case"] for p in manifest["pitfalls"]}
        first = next(c for c in manifest["cases"] if c["case"] not in plain)  # a copy of a case with no other pitfall
        source = out / first["image"]
        copy, copy_masks = _seg2d_paths(out, style, cases, 1)
        copy = copy.with_suffix(source.suffix)
        shutil.copyfile(source, copy)
        shutil.copyfile(out / first["masks"][0], copy_masks[0].with_suffix(Path(first["masks"][0]).suffix))
        manifest["cases"].append({"case": copy.stem, "image": str(copy.relative_to(out)), "masks": []})
        manifest["pitfalls"] = [p for p in manifest["pitfalls"] if p["kind"] != "leakage"]
        manifest["pitfalls"].append({"case": copy.stem, "kind": "leakage", "duplicate_of": first["case"]})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _seg2d_paths(out: Path, style: str, i: int, n_masks: int) -> tuple[Path, list[Path]]:
    if style == "kvasir":
        stem = f"cju{i:04d}kvs"
        return out / "images" / f"{stem}.jpg", [out / "masks" / f"{stem}.jpg"]
    if style == "isic":
        stem = f"ISIC_{i:07d}"
        return out / f"{stem}.jpg", [out / f"{stem}_segmentation.png"]
    name = "benign" if i % 2 == 0 else "malignant"
    stem = f"{name} ({i // 2 + 1})"
    masks = [out / name / f"{stem}_mask.png"] + [out / name / f"{stem}_mask_{k}.png" for k in range(1, n_masks)]
    return out / name / f"{stem}.png", masks


def synth_itk(out, *, cases: int = 8, size: int = 48, seed: int = 0, style: str = "mha") -> dict:
    """3D volumes with a one-structure label in ITK formats: ``mha`` (images/ + labels/ as .mha), ``mhd``
    (.mhd + .raw, LUNA-style) or ``slicer`` (``PatientNN/Scan.nrrd`` + ``Segmentation.seg.nrrd`` with the
    segment named "tumor" at value 1). Geometry: 0.8 x 0.8 x 2.5 mm, oblique origin, LPS as ITK writes it."""
    import SimpleITK as sitk
    from monai.data import create_test_image_3d

    if style not in ("mha", "mhd", "slicer"):
        raise ValueError(f"unknown style {style!r}; expected mha, mhd or slicer")
    out = _fresh(out)
    rs = np.random.RandomState(seed)
    manifest = {"layout": style, "cases": [], "pitfalls": [], "label_names": {"1": "tumor"}}
    for i in range(cases):
        image, label = create_test_image_3d(size, size, size // 2, num_seg_classes=1, channel_dim=None, random_state=rs,
                                            rad_max=size // 5, rad_min=max(2, size // 10))
        written = []
        for array in (image.astype(np.float32) * 1000, label.astype(np.uint8)):
            itk = sitk.GetImageFromArray(np.transpose(array, (2, 1, 0)))  # x, y, z -> ITK's z, y, x
            itk.SetSpacing((0.8, 0.8, 2.5))
            itk.SetOrigin((-20.0 + i, 10.0, 5.0 * i))
            written.append(itk)
        if style == "slicer":
            folder = out / f"Patient{i + 1:02d}"
            folder.mkdir()
            sitk.WriteImage(written[0], str(folder / "Scan.nrrd"), useCompression=True)
            seg = written[1]
            seg.SetMetaData("Segment0_Name", "tumor")
            seg.SetMetaData("Segment0_LabelValue", "1")
            seg.SetMetaData("Segment0_Layer", "0")
            sitk.WriteImage(seg, str(folder / "Segmentation.seg.nrrd"), useCompression=True)
            case = folder.name
        else:
            case = f"case{i:03d}"
            suffix = ".mha" if style == "mha" else ".mhd"
            for itk, folder in zip(written, ("images", "labels")):
                (out / folder).mkdir(exist_ok=True)
                sitk.WriteImage(itk, str(out / folder / f"{case}{suffix}"), useCompression=style == "mha")
        manifest["cases"].append({"case": case, "foreground_voxels": int(label.sum())})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def synth_medmnist(out, *, per_class: int = 20, size: int = 28, seed: int = 0, dims: int = 2) -> dict:
    """A MedMNIST-style archive: ``pneumoniamnist.npz`` (2D radiographs, 0 normal / 1 pneumonia) or, with
    ``dims=3``, ``nodulemnist3d.npz`` (volumes with or without a bright nodule), with ``train_``, ``val_`` and
    ``test_`` images and labels as MedMNIST stores them (uint8, labels of shape (n, 1))."""
    rng = np.random.default_rng(seed)
    out = _fresh(out)
    counts = {"train": per_class, "val": max(5, per_class // 4), "test": max(5, per_class // 4)}
    arrays, manifest = {}, {"layout": "medmnist", "cases": [], "pitfalls": []}
    name = "pneumoniamnist" if dims == 2 else "nodulemnist3d"
    for split, n in counts.items():
        images, labels = [], []
        for label in (0, 1):
            for _ in range(n):
                images.append(_chest(rng, size, bool(label)) if dims == 2 else _nodule_volume(rng, size, bool(label)))
                labels.append([label])
        order = rng.permutation(len(images))
        arrays[f"{split}_images"] = np.stack(images)[order]
        arrays[f"{split}_labels"] = np.array(labels, np.uint8)[order]
        manifest["cases"] += [{"case": f"{name}_{split}_{i:05d}", "class": int(arrays[f"{split}_labels"][i, 0])}
                              for i in range(len(order))]
    np.savez_compressed(out / f"{name}.npz", **arrays)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _nodule_volume(rng: np.random.Generator, size: int, nodule: bool) -> np.ndarray:
    grid = np.indices((size,) * 3).astype(np.float32)
    volume = 0.3 + rng.normal(0, 0.05, (size,) * 3)
    if nodule:
        centre, radius = rng.uniform(0.3, 0.7, 3) * size, rng.uniform(0.08, 0.14) * size
        volume += 0.6 * (((grid - centre[:, None, None, None]) ** 2).sum(0) <= radius**2)
    return np.clip(volume * 255, 0, 255).astype(np.uint8)


def synth_nih(out, *, patients: int = 30, per_patient: int = 2, size: int = 64, seed: int = 0) -> dict:
    """NIH ChestX-ray14's layout: ``images/00000001_000.png`` (patient 1, picture 0) and ``Data_Entry_2017.csv``
    with ``Image Index,Finding Labels,Follow-up #,Patient ID``; each picture has Effusion (a bright band at the
    base of a lung), Nodule (a small bright spot), both (``Effusion|Nodule``) or ``No Finding``."""
    import csv

    rng = np.random.default_rng(seed)
    out = _fresh(out)
    (out / "images").mkdir()
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rows, manifest = [], {"layout": "nih", "cases": [], "pitfalls": []}
    for patient in range(1, patients + 1):
        for k in range(per_patient):
            pixels = _chest(rng, size, False).astype(np.float32)
            findings = [name for name in ("Effusion", "Nodule") if rng.random() < 0.45]
            if "Effusion" in findings:
                side = rng.choice([0.3, 0.7])
                pixels += 110 * ((np.abs(x - side) < 0.14) & (y > 0.66) & (y < 0.8))
            if "Nodule" in findings:
                cx, cy = rng.choice([0.3, 0.7]) + rng.uniform(-0.05, 0.05), rng.uniform(0.3, 0.6)
                pixels += 140 * (((x - cx) ** 2 + (y - cy) ** 2) <= 0.045**2)
            name = f"{patient:08d}_{k:03d}.png"
            _save(np.clip(pixels, 0, 255).astype(np.uint8), out / "images" / name)
            rows.append([name, "|".join(findings) or "No Finding", k, patient])
            manifest["cases"].append({"case": name[:-4], "findings": findings, "patient": patient})
    with open(out / "Data_Entry_2017.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID"])
        writer.writerows(rows)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
