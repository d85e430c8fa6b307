"""CPU tuning for Debian's torch build, measured on this project's 2-vCPU machines.

- glibc gives large tensors back to the OS after every free, so each step page-faults fresh memory
  (a 16 MB zeros() took 57 ms instead of 6 ms): raise the mmap/trim thresholds with mallopt.
- Debian's torch uses whatever libblas.so.3 is installed; OpenBLAS then runs its own thread pool,
  which torch.set_num_threads does not reach: set it too.
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4


def tune_malloc() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_MAX, 0)  # no per-allocation mmap: large tensors reuse heap memory
        libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
        libc.mallopt(_M_TOP_PAD, 256 * 1024 * 1024)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    for name in ("libblas.so.3", "libopenblas.so.0"):
        try:
            ctypes.CDLL(name).openblas_set_num_threads(n)
            return
        except (OSError, AttributeError):
            continue
