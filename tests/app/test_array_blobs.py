"""Arrays to storage's bytes and back."""

from __future__ import annotations

import numpy as np
import pytest

from app.array_blobs import array_of, blob_of


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f2", "|u1", "<i8"])
def test_an_array_comes_back_as_it_went_in_whatever_its_dtype(dtype: str) -> None:
    array = np.arange(24).reshape(2, 3, 4).astype(dtype)
    blob = blob_of("a", array)
    assert (blob.name, blob.dtype, blob.shape) == ("a", np.dtype(dtype).str, (2, 3, 4))
    back = array_of(blob)
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_a_view_of_a_non_contiguous_array_is_stored_in_c_order() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4).T  # (4, 3), Fortran-ordered
    assert np.array_equal(array_of(blob_of("t", array)), array)


def test_only_the_writable_array_can_be_changed() -> None:
    blob = blob_of("a", np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="read-only"):
        array_of(blob)[0] = 1.0
    copy = array_of(blob, writable=True)
    copy[0] = 1.0
    assert array_of(blob)[0] == 0.0
