"""Allocation failures as one clear error: a candidate too large for this machine fails its trial, not the search."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from effscale.models.errors import EffscaleError


class OutOfMemory(EffscaleError):
    """An allocation failed (host memory, or the GPU's); the message says what was being done."""


@contextmanager
def reported_out_of_memory(what: str) -> Iterator[None]:
    """Turn an allocation failure inside the block into `OutOfMemory("out of memory WHAT: ...")`."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not _is_allocation_failure(err):
            raise
        raise OutOfMemory(f"out of memory {what}: a smaller batch, resolution, width or dataset may fit") from None


def _is_allocation_failure(err: RuntimeError) -> bool:
    """torch's CPU allocator ("can't allocate memory") or a CUDA out-of-memory error."""
    return "can't allocate memory" in str(err) or type(err).__name__ == "OutOfMemoryError"
