"""Synthetic short-axis cardiac cine phantom with ACDC labels and optional planted pitfalls.

Each patient gets an end-diastole (ED) and an end-systole (ES) volume: a stack of
8-11 short-axis slices (about 1.4 x 1.4 x 8 mm) from base to apex, with a tapering
LV cavity, a myocardial ring, an RV crescent on the septal side, papillary
muscles inside the LV cavity, and surroundings whose intensities overlap the
myocardium (chest wall, liver) or the blood pools (fat). A smooth bias field and
Rician noise make it a real learning problem: no intensity threshold separates
LV from RV cavity, nor myocardium from muscle.

The true volumes in the manifest are measured on the true labels (voxel count x
voxel volume), so they are exactly what a perfect segmentation would give.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from jupyter_medagent.imaging.pitfalls import plan_pitfalls, plant
from jupyter_medagent.judge.findings import PITFALL_KINDS

ACDC_LABELS = {1: "RV", 2: "MYO", 3: "LV"}
MATRIX = 128  # in-plane voxels


def synth_cardiac(out_dir, cases: int = 20, seed: int = 0, pitfalls: str | list[str] = "none") -> dict:
    """Write ``cases`` patients (ED + ES each) under ``out_dir`` and return the manifest."""
    if cases < 1:
        raise ValueError("cases must be at least 1")
    kinds = parse_pitfall_kinds(pitfalls)
    out = Path(out_dir)
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    case_ids = [f"patient{p:03d}_{phase}" for p in range(1, cases + 1) for phase in ("ED", "ES")]
    planted = plan_pitfalls(case_ids, kinds, np.random.default_rng([seed, 7919]))

    manifest = {
        "dataset": "jupyter_medagent synthetic cardiac cine (short axis)",
        "seed": seed,
        "label_convention": "ACDC",
        "labels": {str(k): v for k, v in ACDC_LABELS.items()},
        "pitfall_kinds": list(kinds),
        "patients": {},
        "cases": [],
    }
    for p in range(1, cases + 1):
        patient = f"patient{p:03d}"
        frames = _synth_patient(np.random.default_rng([seed, p]))
        volumes_ml = {}
        for phase, (image, label, affine) in frames.items():
            case = f"{patient}_{phase}"
            voxel_ml = float(np.prod(nib.affines.voxel_sizes(affine))) / 1000.0
            volumes_ml[phase] = {name: float((label == value).sum() * voxel_ml) for value, name in ACDC_LABELS.items()}
            img_arr, lbl_arr, img_aff, lbl_aff = image, label, affine, affine.copy()
            kind = planted.get(case)
            if kind:
                img_arr, lbl_arr, img_aff, lbl_aff, target = plant(kind, image, label, affine, np.random.default_rng([seed, p, 31]))
            image_file = f"imagesTr/{case}_0000.nii.gz"
            label_file = f"labelsTr/{case}.nii.gz"
            nib.save(nib.Nifti1Image(img_arr, img_aff), str(out / image_file))
            nib.save(nib.Nifti1Image(lbl_arr, lbl_aff), str(out / label_file))
            manifest["cases"].append(
                {
                    "case": case,
                    "patient": patient,
                    "phase": phase,
                    "image": image_file,
                    "label": label_file,
                    "pitfalls": [{"kind": kind, "file": target}] if kind else [],
                }
            )
        edv, esv = volumes_ml["ED"]["LV"], volumes_ml["ES"]["LV"]
        manifest["patients"][patient] = {
            "lv_edv_ml": round(edv, 3),
            "lv_esv_ml": round(esv, 3),
            "lv_ef_percent": round((edv - esv) / edv * 100.0, 3),
            "rv_edv_ml": round(volumes_ml["ED"]["RV"], 3),
            "rv_esv_ml": round(volumes_ml["ES"]["RV"], 3),
            "myo_ed_ml": round(volumes_ml["ED"]["MYO"], 3),
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def parse_pitfall_kinds(pitfalls: str | list[str]) -> tuple[str, ...]:
    if isinstance(pitfalls, str):
        if pitfalls in ("", "none"):
            return ()
        if pitfalls == "all":
            return PITFALL_KINDS
        pitfalls = [p.strip() for p in pitfalls.split(",") if p.strip()]
    unknown = [p for p in pitfalls if p not in PITFALL_KINDS]
    if unknown:
        raise ValueError(f"unknown pitfall kind(s) {unknown}; choose from {', '.join(PITFALL_KINDS)}, 'all' or 'none'")
    return tuple(pitfalls)


# --------------------------------------------------------------------------- anatomy
def _synth_patient(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """ED and ES (image, label, affine) for one patient; the two frames share geometry."""
    sx = float(rng.uniform(1.30, 1.50))
    sz = float(rng.uniform(7.0, 9.0))
    n_slices = int(rng.integers(8, 12))
    anatomy = {
        # Off-centre on both axes, so a flipped label can never land on the heart by symmetry.
        "centre": rng.choice([-1.0, 1.0], size=2) * rng.uniform(5, 14, size=2),
        "angle": float(rng.uniform(-0.6, 0.6)),  # in-plane rotation of the heart (radians)
        "lv_radius": float(rng.uniform(21, 27)),  # ED cavity radius at the base, mm
        "lv_ecc": float(rng.uniform(0.85, 1.0)),
        "wall": float(rng.uniform(7, 10)),  # ED wall thickness, mm
        "lv_length": float(rng.uniform(0.80, 0.95)) * n_slices * sz,  # base-to-apex cavity length, mm
        "rv_scale": float(rng.uniform(0.9, 1.25)),
        "ef": float(rng.uniform(0.30, 0.70)),
        "rv_ef": float(rng.uniform(0.35, 0.60)),
        "papillary": rng.uniform(0.5, 0.9, size=2),
    }
    appearance = {
        "gain": float(rng.uniform(250, 700)),
        "blood": float(rng.uniform(0.85, 0.95)),
        "myo": float(rng.uniform(0.30, 0.38)),
        "muscle": float(rng.uniform(0.33, 0.42)),
        "liver": float(rng.uniform(0.32, 0.40)),
        "fat": float(rng.uniform(0.75, 0.90)),
        "lung": float(rng.uniform(0.04, 0.10)),
        "noise": float(rng.uniform(0.03, 0.05)),
        "bias": rng.uniform(-0.25, 0.25, size=3),
    }
    # About a third of the patients are stored with flipped in-plane axes (LPS-like headers):
    # a legitimate difference the pipeline must handle by reorienting, not a pitfall.
    flip_storage = bool(rng.random() < 0.3)
    affine = np.diag([sx, sx, sz, 1.0])
    affine[:3, 3] = [-MATRIX * sx / 2, -MATRIX * sx / 2, -n_slices * sz / 2]
    noise_rng = np.random.default_rng(rng.integers(1 << 31))

    frames = {}
    for phase in ("ED", "ES"):
        label, tissue = _anatomy(anatomy, phase, sx, sz, n_slices)
        image = _appearance(label, tissue, appearance, noise_rng)
        if flip_storage:
            image, label = image[::-1, ::-1].copy(), label[::-1, ::-1].copy()
            frame_affine = affine @ np.array(
                [[-1, 0, 0, MATRIX - 1], [0, -1, 0, MATRIX - 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float
            )
        else:
            frame_affine = affine.copy()
        frames[phase] = (image, label, frame_affine)
    return frames


def _anatomy(a: dict, phase: str, sx: float, sz: float, n_slices: int) -> tuple[np.ndarray, np.ndarray]:
    """Label map (ACDC values) and a tissue map (0 air, 4 muscle, 5 liver, 6 fat, 7 lung, 8 papillary muscle)."""
    coords = (np.arange(MATRIX) - MATRIX / 2 + 0.5) * sx
    x, y = np.meshgrid(coords, coords, indexing="ij")
    systole = phase == "ES"
    long_shrink = 0.92 if systole else 1.0
    area_scale = np.sqrt((1 - a["ef"]) / long_shrink) if systole else 1.0
    length = a["lv_length"] * long_shrink
    r_cav = a["lv_radius"] * area_scale
    # Myocardial area is conserved between ED and ES, so the wall thickens in systole.
    r_epi_ed = a["lv_radius"] + a["wall"]
    r_epi = np.sqrt(r_cav**2 + (r_epi_ed**2 - a["lv_radius"] ** 2) / long_shrink)

    cos, sin = np.cos(a["angle"]), np.sin(a["angle"])
    u = (x - a["centre"][0]) * cos + (y - a["centre"][1]) * sin  # along the septum-to-lateral axis
    v = -(x - a["centre"][0]) * sin + (y - a["centre"][1]) * cos

    label = np.zeros((MATRIX, MATRIX, n_slices), dtype=np.uint8)
    tissue = np.zeros_like(label)
    body = (x / 88.0) ** 2 + ((y + 5) / 70.0) ** 2 <= 1.0
    fat_layer = body & ((x / 82.0) ** 2 + ((y + 5) / 64.0) ** 2 > 1.0)
    lungs = (((x - 48) / 26.0) ** 2 + ((y + 2) / 38.0) ** 2 <= 1) | (((x + 52) / 24.0) ** 2 + ((y + 4) / 36.0) ** 2 <= 1)
    for k in range(n_slices):
        depth = (k + 0.5) * sz  # distance from the base plane
        rel = depth / length
        t = tissue[..., k]
        t[body] = 4
        t[fat_layer] = 6
        t[lungs & body] = 7
        if k >= n_slices - 3:  # the liver dome enters the lowest slices
            liver = ((x + 30) / 55.0) ** 2 + ((y - 35) / 35.0) ** 2 <= 1.0
            t[liver & body] = 5
        if rel >= 1.15:
            continue
        taper = np.sqrt(max(1.0 - rel**2, 0.0))
        epi_taper = np.sqrt(max(1.0 - (rel / 1.15) ** 2, 0.0))
        r_c = r_cav * taper
        r_e = max(r_epi * epi_taper, r_c + 0.6 * a["wall"])
        ell = (u / 1.0) ** 2 + (v / a["lv_ecc"]) ** 2
        epi = ell <= r_e**2
        cav = ell <= r_c**2
        # Pericardial fat around the heart: bright, like blood, but not labelled.
        t[(ell <= (r_e + 4) ** 2) & ~epi] = 6
        # RV: an ellipse on the septal side (negative u), minus the LV epicardium and a septal margin.
        rv_depth = 0.85
        if rel < rv_depth:
            rv_taper = np.sqrt(1.0 - (rel / rv_depth) ** 2)
            rv_a = r_e * 1.0 * a["rv_scale"] * rv_taper * (np.sqrt(1 - a["rv_ef"]) if systole else 1.0)
            rv_b = r_e * 1.5 * a["rv_scale"] * rv_taper
            rv_centre = -(0.55 * r_e + 0.25 * rv_a)
            rv_outer = ((u - rv_centre) / max(rv_a, 1e-3)) ** 2 + (v / max(rv_b, 1e-3)) ** 2 <= 1.0
            rv = rv_outer & (ell > (r_e + 1.0) ** 2)  # the crescent hugs the septum
            t[(((u - rv_centre) / (rv_a + 3)) ** 2 + (v / (rv_b + 3)) ** 2 <= 1.0) & ~rv & ~epi] = 4  # RV free wall
            label[..., k][rv] = 1
        label[..., k][epi] = 2
        label[..., k][cav] = 3
        # Papillary muscles: dark blobs inside the cavity, labelled as cavity as in ACDC.
        if rel < 0.8 and r_c > 8:
            for angle, size in zip((0.9, -0.9), a["papillary"]):
                pu, pv = 0.55 * r_c * np.cos(angle), 0.55 * r_c * np.sin(angle)
                blob = (u - pu) ** 2 + (v - pv) ** 2 <= (size * 3.5) ** 2
                t[blob & cav] = 8
    return label, tissue


def _appearance(label: np.ndarray, tissue: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """Piecewise-constant intensities, partial-volume blur, bias field, Rician noise, scanner gain."""
    values = np.zeros(label.shape, dtype=np.float32)
    for code, key in ((4, "muscle"), (5, "liver"), (6, "fat"), (7, "lung")):
        values[tissue == code] = p[key]
    values[(label == 1) | (label == 3)] = p["blood"]
    values[label == 2] = p["myo"]
    values[(label == 3) & (tissue == 8)] = p["myo"]  # papillary muscles
    values = ndimage.gaussian_filter(values, sigma=(0.8, 0.8, 0.3))
    n = label.shape[0]
    grid = np.linspace(-1, 1, n)
    gx, gy = np.meshgrid(grid, grid, indexing="ij")
    bias = np.exp(p["bias"][0] * gx + p["bias"][1] * gy + p["bias"][2] * gx * gy)[..., np.newaxis]
    values = values * bias
    sigma = p["noise"]
    noisy = np.sqrt((values + rng.normal(0, sigma, values.shape)) ** 2 + rng.normal(0, sigma, values.shape) ** 2)
    return np.round(noisy * p["gain"]).astype(np.int16)
