"""Synthetic data makers: the cardiac cine phantom (``phantom``) written in the layouts people download
(``replicas``) with planted pitfalls (``pitfalls``), and 2D pictures and ITK volumes (``phantom2d``).

The tests, ``medagent synth``, ``medagent demo`` and the bench make their data here; the toolkit the
generated notebooks import (``imaging/``) does not carry it.
"""

from jupyter_medagent.synth.phantom2d import synth_itk, synth_medmnist, synth_nih, synth_seg2d, synth_xray
from jupyter_medagent.synth.replicas import synth_cardiac

__all__ = ["synth_cardiac", "synth_itk", "synth_medmnist", "synth_nih", "synth_seg2d", "synth_xray"]
