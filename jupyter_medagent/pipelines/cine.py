"""Cines (4D short-axis stacks) through a trained model, the way clinical software reads them: every frame
segmented, the LV volume curve drawn, end-diastole where the curve peaks and end-systole where it dips.

Cines are read one patient at a time, so a data set of cines is never held in memory whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jupyter_medagent.imaging.io import load_volume
from jupyter_medagent.imaging.metrics import volumes_ml
from jupyter_medagent.imaging.orientation import reorient
from jupyter_medagent.imaging.volume import Volume
from jupyter_medagent.pipelines.measures import clinical_measures
from jupyter_medagent.pipelines.segmentation import Transform, predict_volume


@dataclass
class CineResult:
    patient: str
    lv_ml: list[float]  # LV cavity volume per frame
    myo_ml: list[float]
    ed: int  # frames where the LV volume curve peaks and dips
    es: int
    stated_ed: int | None = None  # the frames the data set names, for comparison
    stated_es: int | None = None
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def agrees_with_stated(self) -> bool | None:
        if self.stated_ed is None or self.stated_es is None:
            return None
        return (self.ed, self.es) == (self.stated_ed, self.stated_es)


def segment_cine(model, cine: dict, normalise: Transform, patch, *, lv: int, myo: int, device="cpu", amp=False,
                 metadata: dict | None = None) -> CineResult:
    """Segment every frame of ``cine`` (a data-card cine entry) and read the LV volume curve.

    Args:
        model: the trained network.
        cine: a data card's cine entry ({"patient", "path", "frames", "ed", "es"}).
        normalise: the normalisation transform used in training.
        patch: the training patch size (2 entries: slice by slice, 3: whole volume).
        lv: the LV cavity's label value in the network's output.
        myo: the myocardium's label value.
        device: "cpu" or "cuda".
        amp: bfloat16 autocast on the device.
        metadata: the patient's Info (Height, Weight) for BSA-indexed measures.

    Returns:
        CineResult (patient, lv_ml and myo_ml per frame, ed and es frames, stated_ed/stated_es, measures as
        clinical_measures returns them).
    """
    lv_ml, myo_ml = [], []
    whole = load_volume(cine["path"])  # one patient's cine at a time; decompressing frame by frame would cost more
    for frame in range(cine["frames"]):
        volume = reorient(Volume(whole.array[..., frame], whole.affine), ("R", "A", "S"))
        prediction = predict_volume(model, volume.array, normalise, patch, device=device, amp=amp)
        ml = volumes_ml(prediction, volume.spacing[:3], labels=[lv, myo])
        lv_ml.append(ml[lv])
        myo_ml.append(ml[myo])
    ed, es = int(np.argmax(lv_ml)), int(np.argmin(lv_ml))
    result = CineResult(cine["patient"], lv_ml, myo_ml, ed, es, cine.get("ed"), cine.get("es"))
    if lv_ml[ed] > 0:
        result.measures = clinical_measures(lv_ml[ed], lv_ml[es], myo_ml[ed], metadata)
    return result


def plot_volume_curves(results: list[CineResult]):
    """LV volume over the cardiac cycle, one line per patient, ED and ES marked (a matplotlib figure).

    Args:
        results: CineResult objects from segment_cine.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for r in results:
        line, = ax.plot(range(len(r.lv_ml)), r.lv_ml, marker=".", label=r.patient)
        ax.plot([r.ed, r.es], [r.lv_ml[r.ed], r.lv_ml[r.es]], "o", mfc="none", color=line.get_color())
    ax.set_xlabel("frame")
    ax.set_ylabel("LV volume (mL)")
    ax.set_title("LV volume curves (circles: end-diastole and end-systole read from each curve)")
    if len(results) <= 12:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
