"""Arrays as storage keeps them (``storage.ingest_state.ArrayBlob``: bytes, a numpy dtype
name and a shape) and back. Storage holds plain bytes; turning them into arrays is the
app's."""

from __future__ import annotations

import numpy as np

from storage.ingest_state import ArrayBlob


def blob_of(name: str, array: np.ndarray) -> ArrayBlob:
    """``array``'s C-ordered bytes, its dtype (with byte order) and its shape."""
    array = np.ascontiguousarray(array)
    return ArrayBlob(name, array.dtype.str, tuple(array.shape), array.tobytes())


def array_of(blob: ArrayBlob, *, writable: bool = False) -> np.ndarray:
    """The array of ``blob``: read-only over its bytes, or (``writable``) a copy."""
    array = np.frombuffer(blob.data, dtype=np.dtype(blob.dtype)).reshape(blob.shape)
    return array.copy() if writable else array
