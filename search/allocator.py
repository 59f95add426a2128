"""Keep the memory a training step frees for the next step, instead of giving it back to the OS.

By default glibc's malloc returns freed blocks above a threshold to the OS and trims the top of its heap when
much of it is free. A training step frees and reallocates megabytes of activations (25 MB for the largest of
the default proxy at 64 px, batch 128), so later steps fault pages in again, each one zeroed by the kernel.
`keep_freed_memory` raises the threshold to glibc's largest (32 MB), turns trimming off and grows the heap
64 MB at a time: the process keeps its peak memory mapped and reuses it (tests/test_allocator.py counts the
page faults). It holds for the whole process; EFFSCALE_KEEP_FREED_MEMORY=0 leaves glibc's defaults. What it is
worth: `python -m effscale.experiments.benchmarks.train_speed`, column "of it memory kept".
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

OPT_OUT = "EFFSCALE_KEEP_FREED_MEMORY"  # "0": leave glibc's defaults
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest on 64-bit systems; a larger block still comes from the heap when
# it has a free space that size, and from a fresh mmap only when it has none
TOP_PAD = 64 * 2**20
_NEVER_TRIM = 2**31 - 1  # mallopt takes a C int
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


@functools.cache
def keep_freed_memory() -> bool:
    """Set this process's malloc to keep freed memory for reuse; False where the C library is not glibc or
    EFFSCALE_KEEP_FREED_MEMORY=0. Decided once per process: later calls return the first answer."""
    if os.environ.get(OPT_OUT) == "0" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, _NEVER_TRIM), (_M_TOP_PAD, TOP_PAD))
    return all(mallopt(option, value) == 1 for option, value in settings)
