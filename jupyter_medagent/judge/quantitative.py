"""The quantitative judge: checks that need no model, with structured findings.

Generic checks (geometry, label values, empty labels, label-on-anatomy fit,
intensity scale across cases) work for any modality; the cardiac checks
(label convention, plausibility of a prediction) apply when the labels look
cardiac or a convention is named.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from jupyter_medagent.contracts.mime import FINDINGS_MIME
from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging.conventions import CONVENTIONS
from jupyter_medagent.imaging.volume import Volume
from jupyter_medagent.judge.findings import Finding

# A flipped/permuted label must explain this much more of the image's variance to be flagged.
FIT_MARGIN_ABS = 0.04
FIT_MARGIN_REL = 1.25
INTENSITY_SCALE_RATIO = 20.0  # MRI gains differ several-fold between scanners; x20 is a storage error
MAX_FIT_VOXELS = 2_000_000
FRAGMENT_FRACTION = 0.02  # a separate piece above 2% of the main one is a real fragment, not noise


def _arr(x) -> np.ndarray:
    return np.asarray(x.array if isinstance(x, Volume) else x)


# --------------------------------------------------------------------------- one pair
def check_pair(image: Volume, label: Volume, case: str = "", *, convention: str | None = None) -> list[Finding]:
    """Findings for one image/label pair.

    A label stored in another orientation of the same voxels (a flip or permutation in the header, whose
    world positions coincide with the image's) is a note, not an error: it is checked on the image's grid.

    Args:
        image: the image Volume.
        label: its label Volume.
        case: the case name the findings carry.
        convention: "acdc" or "mnms" enables the cardiac label-convention check; None skips it.

    Returns:
        list of Finding (case, kind, severity "info"/"warning"/"error", message, evidence); evidence keys:
    orientation_flip {"flip_axis": int, "fit_given", "fit_fixed"}, axis_permutation {"permute": [int, int, int]},
    label_convention {"mapping": {old value: new value}}; fix_case takes them as they are.
        Kinds: orientation_flip, axis_permutation, label_convention, spacing_mismatch, geometry_mismatch, interpolated_labels, empty_label, stray_labels, fragmented, aligned_by_reorientation (a note).
    """
    from jupyter_medagent.imaging.orientation import aligned_to

    findings = []
    aligned = aligned_to(image, label)
    if aligned is not None:
        findings.append(Finding(case, "aligned_by_reorientation", "info",
                                f"label stored in orientation {''.join(label.orientation)}, image in "
                                f"{''.join(image.orientation)}: the voxels coincide in world space, so the label is "
                                "reoriented to the image's grid without interpolation",
                                {"label_orientation": "".join(label.orientation),
                                 "image_orientation": "".join(image.orientation)}))
        label = aligned
    findings += _geometry(image, label, case)
    lab = _arr(label)
    values = np.unique(lab)
    fractional = values[np.mod(values, 1) != 0]
    if fractional.size:
        findings.append(
            Finding(case, "interpolated_labels", "error",
                    f"label map has {fractional.size} non-integer values (e.g. {fractional[0]:.3g}): it was resampled "
                    "with linear interpolation; boundaries are eroded and values between classes are invented",
                    {"n_fractional_values": int(fractional.size), "fractional_voxels": int(np.isin(lab, fractional).sum())})
        )
    if not np.any(lab):
        findings.append(Finding(case, "empty_label", "error", "label map contains only background", {}))
        return findings
    if any(f.kind == "geometry_mismatch" and f.evidence.get("shape_differs") for f in findings):
        return findings  # voxel-wise checks need matching arrays
    if label.meta.get("format") == "mask":
        return findings  # a photograph's mask: no anatomy to fit it to, and flips are not how masks go wrong
    findings += _fit_variants(_arr(image), np.rint(lab).astype(np.int16), case)
    if convention:
        detected = detect_convention(np.rint(lab).astype(np.int16))
        if detected and detected != convention:
            findings.append(_convention_finding(case, detected, convention))
    return findings


def _geometry(image: Volume, label: Volume, case: str) -> list[Finding]:
    findings = []
    if image.shape[:3] != label.shape[:3]:
        if label.meta.get("format") == "mask":
            message = (f"mask {Path(label.path).name} is {label.shape[0]}x{label.shape[1]} pixels but its image "
                       f"{Path(image.path).name} is {image.shape[0]}x{image.shape[1]}: it cannot be the image's mask")
        else:
            message = f"image shape {image.shape} and label shape {label.shape} differ"
        findings.append(
            Finding(case, "geometry_mismatch", "error", message,
                    {"image_shape": list(image.shape), "label_shape": list(label.shape), "shape_differs": True,
                     "path": label.path})
        )
        return findings
    img_sp, lab_sp = np.array(image.spacing[:3]), np.array(label.spacing[:3])
    if not np.allclose(img_sp, lab_sp, rtol=0.01):
        findings.append(
            Finding(case, "spacing_mismatch", "error",
                    f"label header spacing {np.round(lab_sp, 3).tolist()} mm differs from the image's "
                    f"{np.round(img_sp, 3).tolist()} mm although the arrays match voxel for voxel; volumes computed "
                    "from the label would be wrong. Use the image's geometry for the label.",
                    {"image_spacing": img_sp.tolist(), "label_spacing": lab_sp.tolist()})
        )
        return findings
    if not np.allclose(image.affine, label.affine, atol=1e-2 * float(img_sp.min())):
        findings.append(
            Finding(case, "geometry_mismatch", "error",
                    f"image and label affines differ (orientation {''.join(image.orientation)} vs "
                    f"{''.join(label.orientation)}): they do not describe the same voxels in space",
                    {"image_affine": np.round(image.affine, 3).tolist(), "label_affine": np.round(label.affine, 3).tolist()})
        )
    return findings


def label_fit(image: np.ndarray, label: np.ndarray, roi: tuple[slice, ...] | None = None) -> float:
    """Fraction of the image's intensity variance (inside ``roi``) explained by the label partition (eta^2).

    A label that sits on the anatomy it claims splits the image into homogeneous regions;
    the same label flipped or permuted does not.
    """
    img = image[roi] if roi else image
    lab = label[roi] if roi else label
    x = img.astype(np.float64).ravel()
    g = lab.ravel().astype(np.int64)
    g -= g.min()
    counts = np.bincount(g)
    sums = np.bincount(g, weights=x)
    present = counts > 0
    means = sums[present] / counts[present]
    total = ((x - x.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    return float((counts[present] * (means - x.mean()) ** 2).sum() / total)


def _variants(shape: tuple[int, ...]) -> list[tuple[str, dict[str, Any], Any]]:
    """Label transforms to compare against: a flip of each axis, a swap of each pair of equal-sized axes."""
    variants = [("orientation_flip", {"flip_axis": ax}, lambda a, ax=ax: np.flip(a, axis=ax)) for ax in range(3)]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        if shape[a] == shape[b]:
            order = [0, 1, 2]
            order[a], order[b] = b, a
            variants.append(("axis_permutation", {"permute": order}, lambda x, o=tuple(order): np.transpose(x, o)))
    return variants


def _fit_variants(image: np.ndarray, label: np.ndarray, case: str) -> list[Finding]:
    if image.ndim != 3 or label.ndim != 3:
        return []
    step = max(1, int(np.ceil((image.size / MAX_FIT_VOXELS) ** (1 / 3))))
    img = image[::step, ::step, ::step]
    lab = label[::step, ::step, ::step]
    variants = [(kind, evidence, fn(lab)) for kind, evidence, fn in _variants(lab.shape)]
    # One region of interest for all variants (the union of their foreground boxes, plus a margin),
    # so their scores compare like with like and the empty background does not dominate.
    union = (lab > 0).copy()
    for _, _, v in variants:
        union |= v > 0
    roi = _bounding_box(union, margin=3)
    given = label_fit(img, lab, roi)
    scored = sorted(((label_fit(img, v, roi), kind, ev) for kind, ev, v in variants), key=lambda t: -t[0])
    best, kind, evidence = scored[0]
    if best > given * FIT_MARGIN_REL and best - given > FIT_MARGIN_ABS:
        what = (
            f"flipped along voxel axis {evidence['flip_axis']}" if kind == "orientation_flip"
            else f"stored with axes permuted {evidence['permute']}"
        )
        return [
            Finding(case, kind, "error",
                    f"the label does not sit on the anatomy it claims: the same label {what} fits the image far better "
                    f"(explained intensity variance {best:.2f} vs {given:.2f}); the label is {what}",
                    {**evidence, "fit_given": round(given, 4), "fit_fixed": round(best, 4)})
        ]
    return []


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    coords = np.argwhere(mask)
    lo = np.maximum(coords.min(axis=0) - margin, 0)
    hi = np.minimum(coords.max(axis=0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


# --------------------------------------------------------------------------- cardiac conventions
def _enclosure(label: np.ndarray, inner: int, ring: int) -> float:
    """Fraction of the in-plane border of ``inner`` that touches ``ring`` (1.0 = fully enclosed)."""
    mask = label == inner
    if not mask.any():
        return 0.0
    structure = np.zeros((3, 3, 1), dtype=bool)
    structure[:, :, 0] = ndimage.generate_binary_structure(2, 1)
    border = ndimage.binary_dilation(mask, structure) & ~mask
    return float((label[border] == ring).mean()) if border.any() else 0.0


def detect_convention(label: np.ndarray) -> str | None:
    """'acdc' or 'mnms' when the label looks like a 3-structure cardiac map, else None.

    The LV cavity is the structure the myocardium (2) encloses; the RV only touches it.

    Args:
        label: a label map (array of ints) with values 1, 2, 3.

    Returns:
        "acdc" (3 is the LV), "mnms" (1 is the LV) or None.
    """
    present = set(np.unique(label).tolist()) - {0}
    if present != {1, 2, 3}:
        return None
    enc1, enc3 = _enclosure(label, 1, 2), _enclosure(label, 3, 2)
    if max(enc1, enc3) < 0.6 or abs(enc1 - enc3) < 0.2:
        return None
    return "mnms" if enc1 > enc3 else "acdc"


def _convention_finding(case: str, detected: str, expected: str) -> Finding:
    src, dst = CONVENTIONS[detected], CONVENTIONS[expected]
    mapping = {src[name]: dst[name] for name in src}
    return Finding(case, "label_convention", "error",
                   f"label values follow the {detected.upper()} convention ({_describe(src)}) but the data set uses "
                   f"{expected.upper()} ({_describe(dst)}): LV and RV would be swapped",
                   {"detected": detected, "expected": expected, "mapping": {str(k): v for k, v in mapping.items()}})


def _describe(convention: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(convention.items(), key=lambda kv: kv[1]))


# --------------------------------------------------------------------------- a whole data set
def check_dataset(card, *, convention: str | None = None) -> list[Finding]:
    """All pairs of a DataCard plus checks across cases (label sets, conventions, intensity scale), and what
    the layout itself reported (a missing frame, a CSV without a row, a SEG without its series).

    Args:
        card: the DataCard (build_data_card(folder)).
        convention: "acdc" or "mnms" to check every pair against that convention; None detects each pair's
            convention and reports the cases that disagree with the rest.

    Returns:
        list of Finding (case, kind, severity "info"/"warning"/"error", message, evidence); evidence keys:
    orientation_flip {"flip_axis": int, "fit_given", "fit_fixed"}, axis_permutation {"permute": [int, int, int]},
    label_convention {"mapping": {old value: new value}}; fix_case takes them as they are.
        Kinds: those of check_pair plus intensity_scale, damaged_layout and unreadable.
    """
    from jupyter_medagent.imaging.datacard import load_pair

    findings: list[Finding] = list(card.layout_findings)
    detected: dict[str, str | None] = {}
    for case in card.cases:
        if case.error:
            findings.append(Finding(case.case_id, "unreadable", "error", case.error, {"path": case.image_path}))
            continue
        if case.label_path is None:
            continue
        try:
            image, label = load_pair(case)
        except DataError as exc:
            findings.append(Finding(case.case_id, "unreadable", "error", str(exc), {"path": case.label_path}))
            continue
        pair = check_pair(image, label, case.case_id, convention=convention)
        findings += pair
        if not any(f.kind in ("empty_label", "interpolated_labels", "geometry_mismatch") for f in pair):
            detected[case.case_id] = detect_convention(np.rint(label.array).astype(np.int16))
    findings += _dataset_conventions(detected, convention)
    findings += _dataset_label_sets(card)
    findings += _dataset_intensity(card)
    if card.dims == 2:
        from jupyter_medagent.judge.pictures import check_pictures

        findings += check_pictures(card)
    for path in card.unpaired_labels:
        findings.append(Finding(path, "unreadable", "warning", f"label map {path} has no matching image", {"path": path}))
    return findings


def dataset_convention(card, findings=()) -> str | None:
    """The cardiac label convention the data set follows ('acdc', 'mnms' or None if not cardiac): what the
    labels' shapes show on a few clean cases, else what the data set's own label names or layout say."""
    from jupyter_medagent.imaging.conventions import convention_from_names
    from jupyter_medagent.imaging.datacard import load_pair

    flagged = {_get(f, "case") for f in findings}
    votes, looked = Counter(), 0
    for case in card.readable:
        if case.label_path and case.case_id not in flagged and case.label_integer and looked < 3:
            try:
                label = load_pair(case)[1]
            except DataError:
                continue
            looked += 1
            votes[detect_convention(np.rint(label.array).astype(np.int16))] += 1
    shown = votes.most_common(1)[0][0] if votes else None
    return shown or convention_from_names(card.label_names) or card.layout_convention


def _dataset_conventions(detected: dict[str, str | None], convention: str | None) -> list[Finding]:
    if convention:  # already checked per pair
        return []
    votes = Counter(v for v in detected.values() if v)
    if not votes:
        return []
    majority = votes.most_common(1)[0][0]
    return [_convention_finding(case, conv, majority) for case, conv in detected.items() if conv and conv != majority]


def _dataset_label_sets(card) -> list[Finding]:
    sets = {c.case_id: tuple(int(v) for v in c.label_values) for c in card.readable if c.label_path and c.label_integer}
    nonempty = [s for s in sets.values() if s != (0,)]
    if not nonempty:
        return []
    common = Counter(nonempty).most_common(1)[0][0]
    findings = []
    for case, values in sets.items():
        stray = sorted(set(values) - set(common))
        if stray and values != (0,):
            findings.append(Finding(case, "stray_labels", "error",
                                    f"label values {stray} do not occur in the rest of the data set (expected {list(common)})",
                                    {"stray_values": stray, "expected": list(common)}))
    return findings


def _dataset_intensity(card) -> list[Finding]:
    highs = {c.case_id: c.intensity["p99.5"] for c in card.readable if c.intensity and c.intensity["p99.5"] > 0}
    if len(highs) < 3:
        return []
    median = float(np.median(list(highs.values())))
    findings = []
    for case, high in highs.items():
        ratio = high / median
        if ratio > INTENSITY_SCALE_RATIO or ratio < 1 / INTENSITY_SCALE_RATIO:
            findings.append(Finding(case, "intensity_scale", "warning",
                                    f"intensities are on another scale than the rest of the data set (99.5th percentile "
                                    f"{high:.4g} vs median {median:.4g}, x{ratio:.3g}); normalise each image on its own "
                                    "(z-score) rather than with one global range",
                                    {"p99_5": high, "dataset_median_p99_5": median, "ratio": ratio}))
    return findings


# --------------------------------------------------------------------------- predictions
def check_prediction(prediction, case: str = "", *, image=None, convention: str = "acdc") -> list[Finding]:
    """Anatomical plausibility of a cardiac prediction (slice-wise for thick-slice stacks).

    Args:
        prediction: the predicted label map (array of ints).
        case: the case name the findings carry.
        image: accepted for symmetry with check_pair; the checks read the label map alone.
        convention: the label convention of ``prediction``: "acdc" (1 RV, 2 myocardium, 3 LV) or "mnms"
            (1 LV, 2 myocardium, 3 RV).

    Returns:
        list of Finding of kinds missing_structure, fragmented and implausible_anatomy (report them with
        display_findings(..., scope="predictions")).
    """
    pred = np.rint(_arr(prediction)).astype(np.int16)
    names = CONVENTIONS[convention]
    findings = []
    for name, value in names.items():
        if not np.any(pred == value):
            findings.append(Finding(case, "missing_structure", "error", f"no {name} predicted anywhere", {"structure": name}))
    if findings:
        return findings
    lv, myo, rv = names["LV"], names["MYO"], names["RV"]
    ring = [(k, _enclosure(pred[..., k : k + 1], lv, myo)) for k in range(pred.shape[2]) if np.any(pred[..., k] == lv)]
    open_slices = [k for k, enc in ring if enc < 0.85]
    if open_slices:
        findings.append(Finding(case, "implausible_anatomy", "warning",
                                f"myocardium is not a closed ring around the LV cavity on slice(s) {open_slices}",
                                {"slices": open_slices, "enclosure": {str(k): round(e, 2) for k, e in ring}}))
    if _enclosure(pred, rv, myo) == 0.0:
        findings.append(Finding(case, "implausible_anatomy", "warning", "RV does not touch the myocardium (it should lie beside the septum)", {}))
    for name, value in names.items():
        components, n = ndimage.label(pred == value)
        if n > 1:
            sizes = np.bincount(components.ravel())[1:]
            stray = int((sizes > FRAGMENT_FRACTION * sizes.max()).sum() - 1)
            if stray:
                findings.append(Finding(case, "fragmented", "warning",
                                        f"{name} is split into {stray + 1} sizeable pieces",
                                        {"structure": name, "component_sizes": sorted(sizes.tolist(), reverse=True)[:5]}))
    return findings


# --------------------------------------------------------------------------- reporting
def verdict_of(findings) -> str:
    """'flag' when any finding is a warning or an error, else 'ok'.

    Args:
        findings: Finding objects or their dicts.

    Returns:
        "flag" or "ok".
    """
    return "flag" if any(_get(f, "severity") in ("warning", "error") for f in findings) else "ok"


def _get(finding, key):
    return finding[key] if isinstance(finding, dict) else getattr(finding, key)


def findings_table_html(findings) -> str:
    if not findings:
        return "<p><b>Quality checks:</b> no findings.</p>"
    from html import escape

    # Case names and messages come from file names and headers: escaped, never markup.
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str(_get(f, key)))}</td>" for key in ("case", "kind", "severity", "message"))
        + "</tr>" for f in findings
    )
    return (f"<p><b>Quality checks:</b> {len(findings)} finding(s)</p><table><thead><tr><th>case</th><th>kind</th>"
            f"<th>severity</th><th>what is wrong</th></tr></thead><tbody>{rows}</tbody></table>")


def display_findings(findings, scope: str = "data") -> None:
    """Show findings as a table and hand them to the agent loop (and its judge) through FINDINGS_MIME.

    Args:
        findings: Finding objects or dicts with ``case``, ``kind`` (one of FINDING_KINDS), ``severity``
            ("info", "warning" or "error"), ``message`` and optional ``evidence``.
        scope: what was checked: "data" (images and labels, check_dataset/check_pair) or "predictions"
            (check_prediction). A report replaces the earlier report of its scope: the judge goes on the
            latest one, and earlier findings it no longer lists count as cleared. So report everything that
            is still wrong in that scope, and an empty list when nothing is.

    Returns:
        None; the table is displayed.
    """
    from IPython.display import display

    dicts = [f.to_dict() if isinstance(f, Finding) else dict(f) for f in findings]
    display({"text/html": findings_table_html(dicts), "text/plain": f"{len(dicts)} finding(s)",
             FINDINGS_MIME: {"findings": dicts, "scope": scope}}, raw=True)
