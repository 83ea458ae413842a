"""What a header claims, checked before any array is allocated: a 64-byte file claiming 1500^3 voxels, or an
image larger than the free memory, is an error that names the file, not a MemoryError."""

from __future__ import annotations

import math
from pathlib import Path

from jupyter_medagent.contracts.errors import DataError

COMPRESSED_SUFFIXES = (".gz", ".mgz", ".nrrd", ".mha")  # whose voxels may be deflate-compressed
GZIP_MAX_RATIO = 1032  # deflate cannot compress better than about 1032:1
MEMORY_SHARE = 0.8  # of the free memory one array may take


def check_claimed_size(path: Path, shape: tuple[int, ...], itemsize: int, *, whole_file_shape=None) -> None:
    """Refuse to allocate what a header claims when the file cannot hold it, or memory cannot."""
    whole = math.prod(whole_file_shape or shape) * itemsize
    size = path.stat().st_size
    capacity = size * GZIP_MAX_RATIO if path.name.lower().endswith(COMPRESSED_SUFFIXES) else size
    if whole > capacity:
        raise DataError(path, f"the header claims {' x '.join(map(str, whole_file_shape or shape))} voxels "
                              f"({_gb(whole)}) but the file of {size:,} bytes cannot hold them: truncated or corrupt")
    check_memory(path, shape, itemsize)


def check_memory(path: Path, shape: tuple[int, ...], itemsize: int) -> None:
    import psutil

    wanted, free = math.prod(shape) * itemsize, psutil.virtual_memory().available
    if wanted > free * MEMORY_SHARE:
        raise DataError(path, f"needs {_gb(wanted)} of memory to load, but only {_gb(free)} are free")


def _gb(n: float) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 / 10 else f"{n / 1024**2:.1f} MB"
