"""Imaging toolkit: loading, the data card, rendering and metrics (the synthetic data makers are in ``synth/``).

Plain functions; the agent, the judges and the generated notebooks all call them.
"""

from jupyter_medagent.imaging.datacard import CaseCard, DataCard, build_data_card, load_pair, patient_of
from jupyter_medagent.imaging.io import load_volume, save_volume
from jupyter_medagent.imaging.metrics import (
    dice_per_label,
    ejection_fraction,
    hd95_per_label,
    myocardial_mass_g,
    volumes_ml,
)
from jupyter_medagent.imaging.orientation import reorient
from jupyter_medagent.imaging.render import Montage, render_montage
from jupyter_medagent.imaging.volume import Volume

__all__ = [
    "CaseCard", "DataCard", "Montage", "Volume", "build_data_card", "dice_per_label", "ejection_fraction",
    "load_pair", "hd95_per_label", "load_volume", "myocardial_mass_g", "patient_of", "render_montage",
    "reorient", "save_volume", "volumes_ml",
]
