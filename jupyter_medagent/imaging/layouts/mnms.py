"""M&Ms (multi-centre, multi-vendor cardiac MRI) and M&Ms-2 (short axis).

M&Ms: ``<code>/<code>_sa.nii.gz`` is the 4D cine and ``<code>_sa_gt.nii.gz`` a 4D label map with labels at
ED and ES only; the ED/ES frame indices (0-based) are in the data set's information CSV, found at the
root whatever its file name by its columns. The frames the CSV names are checked against the frames the
label map actually labels. M&Ms-2: ``<code>_SA_ED.nii.gz`` / ``_SA_ES`` with ``_gt``, and ``_SA_CINE``;
long-axis views are listed and not used. Both use labels 1 LV, 2 MYO, 3 RV (the reverse of ACDC).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from jupyter_medagent.imaging.layouts.common import Cine, Discovery, Entry, Source, finding

NAME = "M&Ms"
CODE_COLUMNS = ("external code", "subject_code", "subject code", "code")
METADATA_COLUMNS = ("vendor", "vendorname", "centre", "center", "pathology", "disease")


def detect(root: Path) -> bool:
    return any(True for _ in root.rglob("*_sa.nii*")) or any(True for _ in root.rglob("*_SA_ED.nii*"))


def discover(root: Path) -> Discovery:
    found = Discovery(NAME, convention="mnms")
    table = _information_table(root, found)
    for cine in sorted(root.rglob("*_sa.nii*")):
        code = cine.name.split("_sa.nii")[0]
        gt = next(iter(sorted(cine.parent.glob(f"{code}_sa_gt.nii*"))), None)
        row = table.get(code)
        if row is not None:
            found.patients[code] = {k: v for k, v in row.items() if k.lower() in METADATA_COLUMNS}
        ed, es = _frames(code, row, gt, cine, root, found, bool(table))
        found.cines.append(Cine(code, Source(str(cine)), ed, es))
        split = "training" if gt is not None else "testing"
        for phase, frame in (("ED", ed), ("ES", es)):
            if frame is not None:
                found.entries.append(Entry(f"{code}_{phase}", code, Source(str(cine), frame=frame),
                                           Source(str(gt), frame=frame) if gt is not None else None, phase, split=split))
    _mnms2(root, found)
    return found


def _mnms2(root: Path, found: Discovery) -> None:
    found.layout = NAME if found.cines else "M&Ms-2"
    for image in sorted(root.rglob("*_SA_ED.nii*")) + sorted(root.rglob("*_SA_ES.nii*")):
        if "_gt" in image.name:
            continue
        code, phase = image.name.split("_SA_")[0], image.name.split("_SA_")[1][:2]
        gt = image.with_name(image.name.replace(f"_SA_{phase}", f"_SA_{phase}_gt"))
        found.entries.append(Entry(f"{code}_{phase}", code, Source(str(image)), Source(str(gt)) if gt.exists() else None,
                                   phase, split="training" if gt.exists() else "testing"))
        cine = next(iter(sorted(image.parent.glob(f"{code}_SA_CINE.nii*"))), None)
        if phase == "ED" and cine is not None:
            found.cines.append(Cine(code, Source(str(cine))))
    found.skipped += [f"{p.relative_to(root)}: a long-axis view (short-axis analysis does not use it)"
                      for p in sorted(root.rglob("*_LA_*.nii*"))]


def _information_table(root: Path, found: Discovery) -> dict[str, dict[str, str]]:
    """The information CSV's rows by subject code (any file name: it is known by its columns)."""
    for path in sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")):
        try:
            with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, csv.Error):
            continue
        if not rows:
            continue
        columns = {c.strip().lower(): c for c in rows[0] if c}
        code = next((columns[c] for c in CODE_COLUMNS if c in columns), None)
        if code and "ed" in columns and "es" in columns:
            found.skipped.append(f"{path.relative_to(root)}: the data set's information table (ED/ES frames, vendor, "
                                 "centre) was read")
            return {row[code].strip(): {k.strip(): (v or "").strip() for k, v in row.items() if k} for row in rows}
    return {}


def _frames(code: str, row, gt: Path | None, cine: Path, root: Path, found: Discovery,
            have_table: bool) -> tuple[int | None, int | None]:
    """ED and ES frame indices: the CSV's, confirmed against the frames the label map labels."""
    named = None
    if row is not None:
        try:
            named = int(float(row.get("ED") or row.get("ed"))), int(float(row.get("ES") or row.get("es")))
        except (TypeError, ValueError):
            found.findings.append(finding(code, f"the information table's ED/ES for {code} are not frame numbers", cine))
    elif have_table:
        found.findings.append(finding(code, f"the information table has no row for {code}; ED and ES are taken from "
                                      "the frames its label map labels" if gt else "the information table has no row "
                                      f"for {code} and it has no label map: ED and ES are unknown", cine,
                                      "warning" if gt else "error"))
    if gt is None:
        return named or (None, None)
    labelled = _labelled_frames(gt, named)
    if named and all(f in labelled for f in named):
        return named
    labelled = _labelled_frames(gt, None)  # read every frame: the named ones were empty or absent
    if len(labelled) < 2:
        found.findings.append(finding(code, f"{gt.relative_to(root)} labels {len(labelled)} frame(s); ED and ES need two",
                                      gt))
        return named or (None, None)
    ed, es = max(labelled, key=labelled.get), min(labelled, key=labelled.get)  # the LV (label 1) is largest at ED
    if named:
        found.findings.append(finding(code, f"the information table names frames {named[0]}/{named[1]} for ED/ES but "
                                      f"{gt.name} labels frames {sorted(labelled)}; using {ed}/{es}", gt, "warning"))
    return ed, es


def _labelled_frames(gt: Path, frames) -> dict[int, int]:
    """{frame: LV voxel count} for the frames of the 4D label map that hold labels (only ``frames`` if given)."""
    import nibabel as nib

    proxy = nib.load(str(gt)).dataobj
    n = proxy.shape[3] if len(proxy.shape) >= 4 else 1
    out = {}
    for frame in (frames if frames is not None else range(n)):
        if not 0 <= frame < n:
            continue
        data = np.asanyarray(proxy[..., frame]) if len(proxy.shape) >= 4 else np.asanyarray(proxy)
        if data.any():
            out[frame] = int((np.rint(data) == 1).sum())
    return out
