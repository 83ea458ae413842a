"""Synthetic short-axis cardiac cine phantom with ACDC labels and optional planted pitfalls.

Each patient gets an end-diastole (ED) and an end-systole (ES) volume, or a whole cine of N frames
whose LV volume curve falls from ED (frame 0) to ES a third of the way through the cycle: a stack of
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

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

ACDC_LABELS = {1: "RV", 2: "MYO", 3: "LV"}
MATRIX = 128  # in-plane voxels
SYSTOLE_FRACTION = 0.35  # end-systole falls a third of the way through the cycle


@dataclass
class SimulatedPatient:
    number: int
    frames: list[tuple[np.ndarray, np.ndarray]]  # (image, ACDC label) per time point
    affine: np.ndarray
    ed: int  # frame indices, 0-based
    es: int
    cine: bool  # frames is a whole cine (else just ED and ES)
    height_cm: float
    weight_kg: float

    def truth(self) -> dict:
        """Volumes measured on the true labels: exactly what a perfect segmentation would give."""
        voxel_ml = float(np.prod(nib.affines.voxel_sizes(self.affine))) / 1000.0
        ml = [{name: float((label == value).sum() * voxel_ml) for value, name in ACDC_LABELS.items()}
              for _, label in self.frames]
        edv, esv = ml[self.ed]["LV"], ml[self.es]["LV"]
        bsa = float(np.sqrt(self.height_cm * self.weight_kg / 3600.0))  # Mosteller
        truth = {
            "lv_edv_ml": round(edv, 3), "lv_esv_ml": round(esv, 3), "lv_ef_percent": round((edv - esv) / edv * 100.0, 3),
            "rv_edv_ml": round(ml[self.ed]["RV"], 3), "rv_esv_ml": round(ml[self.es]["RV"], 3),
            "myo_ed_ml": round(ml[self.ed]["MYO"], 3), "lv_mass_g": round(ml[self.ed]["MYO"] * 1.05, 3),
            "height_cm": round(self.height_cm, 1), "weight_kg": round(self.weight_kg, 1), "bsa_m2": round(bsa, 4),
        }
        if self.cine:
            truth.update(frames=len(self.frames), ed_frame=self.ed, es_frame=self.es,
                         lv_volume_curve_ml=[round(v["LV"], 3) for v in ml])
        return truth


def simulate_patient(seed: int, number: int, frames: int = 0, matrix=(MATRIX, MATRIX)) -> SimulatedPatient:
    """Patient ``number`` of the phantom for ``seed``: ED and ES, or a cine of ``frames`` time points."""
    if frames:
        es = int(round(SYSTOLE_FRACTION * frames))
        contractions = [_contraction(t, frames, es) for t in range(frames)]
        ed = 0
    else:
        contractions, ed, es = [0.0, 1.0], 0, 1
    images, affine = _synth_patient(np.random.default_rng([seed, number]), contractions, matrix)
    body = np.random.default_rng([seed, number, 101])  # its own stream: adding it changes no anatomy
    return SimulatedPatient(number, images, affine, ed, es, bool(frames), float(body.uniform(150, 195)),
                            float(body.uniform(50, 110)))


def _contraction(t: int, frames: int, es: int) -> float:
    """How far systole has gone at frame ``t``: 0 at end-diastole (frame 0), 1 at end-systole (frame ``es``)."""
    if t <= es:
        return float((1 - np.cos(np.pi * t / es)) / 2)
    return float((1 + np.cos(np.pi * (t - es) / (frames - es))) / 2)


# --------------------------------------------------------------------------- anatomy
def _synth_patient(rng: np.random.Generator, contractions: list[float],
                   matrix: tuple[int, int]) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """(image, label) per contraction state, and the affine they share."""
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
    nx, ny = matrix
    affine = np.diag([sx, sx, sz, 1.0])
    affine[:3, 3] = [-nx * sx / 2, -ny * sx / 2, -n_slices * sz / 2]
    if flip_storage:
        affine = affine @ np.array([[-1, 0, 0, nx - 1], [0, -1, 0, ny - 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    noise_rng = np.random.default_rng(rng.integers(1 << 31))
    frames = []
    for contraction in contractions:
        label, tissue = _anatomy(anatomy, contraction, sx, sz, n_slices, matrix)
        image = _appearance(label, tissue, appearance, noise_rng)
        if flip_storage:
            image, label = image[::-1, ::-1].copy(), label[::-1, ::-1].copy()
        frames.append((image, label))
    return frames, affine


def _anatomy(a: dict, contraction: float, sx: float, sz: float, n_slices: int,
             matrix: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Label map (ACDC values) and a tissue map (0 air, 4 muscle, 5 liver, 6 fat, 7 lung, 8 papillary muscle)
    at ``contraction`` (0: end-diastole, 1: end-systole)."""
    nx, ny = matrix
    x, y = np.meshgrid((np.arange(nx) - nx / 2 + 0.5) * sx, (np.arange(ny) - ny / 2 + 0.5) * sx, indexing="ij")
    long_shrink = 1.0 - 0.08 * contraction  # the base descends in systole
    area_scale = np.sqrt((1 - a["ef"] * contraction) / long_shrink)
    length = a["lv_length"] * long_shrink
    r_cav = a["lv_radius"] * area_scale
    # Myocardial area is conserved between ED and ES, so the wall thickens in systole.
    r_epi_ed = a["lv_radius"] + a["wall"]
    r_epi = np.sqrt(r_cav**2 + (r_epi_ed**2 - a["lv_radius"] ** 2) / long_shrink)

    cos, sin = np.cos(a["angle"]), np.sin(a["angle"])
    u = (x - a["centre"][0]) * cos + (y - a["centre"][1]) * sin  # along the septum-to-lateral axis
    v = -(x - a["centre"][0]) * sin + (y - a["centre"][1]) * cos

    label = np.zeros((nx, ny, n_slices), dtype=np.uint8)
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
            rv_a = r_e * 1.0 * a["rv_scale"] * rv_taper * np.sqrt(1 - a["rv_ef"] * contraction)
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
    gx, gy = np.meshgrid(np.linspace(-1, 1, label.shape[0]), np.linspace(-1, 1, label.shape[1]), indexing="ij")
    bias = np.exp(p["bias"][0] * gx + p["bias"][1] * gy + p["bias"][2] * gx * gy)[..., np.newaxis]
    values = values * bias
    sigma = p["noise"]
    noisy = np.sqrt((values + rng.normal(0, sigma, values.shape)) ** 2 + rng.normal(0, sigma, values.shape) ** 2)
    return np.round(noisy * p["gain"]).astype(np.int16)
