"""An interactive look at a volume and its labels in the notebook, through ipyniivue (WebGL, no CDN).

The agent's own visual checks are rendered in the kernel (``imaging.render``); this viewer is for
the person reading the notebook. ``view`` takes file paths, Volumes or numpy arrays.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def view(image: Any, label: Any = None, *, opacity: float = 0.5, label_colormap: str = "warm"):
    """``from jupyter_medagent import view; view("case01.nii.gz", "case01_gt.nii.gz")`` -> a NiiVue widget."""
    try:
        from ipyniivue import NiiVue
    except ImportError as exc:  # the [lab] extra brings it
        raise ImportError("the viewer needs ipyniivue: pip install 'jupyter_medagent[lab]'") from exc

    volumes = [{"path": _as_file(image, "image"), "colormap": "gray"}]
    if label is not None:
        path = _as_file(label, "label")
        top = float(_max_value(path))
        # Background (0) stays transparent: the overlay starts just above it.
        volumes.append({"path": path, "colormap": label_colormap, "opacity": opacity, "cal_min": 0.5,
                        "cal_max": max(top, 1.0)})
    viewer = NiiVue()
    viewer.load_volumes(volumes)
    return viewer


def _as_file(item: Any, role: str) -> str:
    """A path NiiVue can load: existing files pass through; Volumes and arrays are written to a temp NIfTI."""
    import numpy as np

    from jupyter_medagent.contracts.errors import DataError
    from jupyter_medagent.imaging.io import load_volume, save_volume
    from jupyter_medagent.imaging.volume import Volume

    if isinstance(item, (str, Path)):
        if not Path(item).exists():
            raise DataError(item, f"no such {role} file")
        load_volume(item)  # a broken file is named here (DataError), not left "loading ..." in the browser forever
        return str(Path(item).resolve())
    if isinstance(item, np.ndarray):
        item = Volume(item, np.eye(4))
    if not isinstance(item, Volume):
        raise TypeError(f"view() takes a path, a Volume or a numpy array as the {role}, not {type(item).__name__}")
    out = Path(tempfile.mkdtemp(prefix="medagent-view-")) / f"{role}.nii.gz"
    return str(save_volume(item, out))


def _max_value(path: str) -> float:
    import nibabel as nib
    import numpy as np

    return float(np.max(np.asanyarray(nib.load(path).dataobj)))
