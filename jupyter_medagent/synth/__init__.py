"""Synthetic data makers: the cardiac cine phantom (``phantom``) written in the layouts people download
(``replicas``) with planted pitfalls (``pitfalls``), and 2D pictures and ITK volumes (``phantom2d``).

The tests, ``medagent synth``, ``medagent demo`` and the bench make their data here; the toolkit the
generated notebooks import (``imaging/``) does not carry it.
"""
