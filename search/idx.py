"""Reader of IDX files (the MNIST / Fashion-MNIST format), gzipped or not."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from effscale.models.errors import EffscaleError

_GZIP_MAGIC = b"\x1f\x8b"
_UINT8_CODE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """Read an unsigned-byte IDX file into a uint8 array shaped as its header says.

    The header is validated (two zero bytes, dtype code 0x08, dimension count, positive dims)
    and the payload must have exactly the size the dims imply; otherwise EffscaleError.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0:2] != b"\x00\x00":
        raise EffscaleError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != _UINT8_CODE:
        raise EffscaleError(f"{path}: IDX dtype code 0x{raw[2]:02x} is not supported (only 0x08, unsigned byte)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise EffscaleError(f"{path}: corrupt IDX header ({ndim} dims, {len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if 0 in dims:
        raise EffscaleError(f"{path}: IDX header has a zero dimension {dims}")
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise EffscaleError(
            f"{path}: IDX payload is {len(raw) - header} bytes, header {dims} needs {expected} (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()  # writable


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it starts with the gzip magic number."""
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise EffscaleError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise EffscaleError(f"{path}: unreadable or corrupt gzip data ({exc})") from None
    return raw
