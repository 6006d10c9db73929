"""The cart band as the ingest worker keeps it: cells per frame, one frame at a time."""

import numpy as np
import pytest

from app.video.cart_band import CELL, KEPT_DTYPE, band_top, cart_cells, kept_cells


def _clip(count: int, height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def test_kept_cells_are_the_band_cells_of_each_frame_in_half_precision() -> None:
    clip = _clip(5)
    kept = kept_cells(clip)
    assert kept is not None and kept.dtype == KEPT_DTYPE
    rows = (96 - band_top(96)) // CELL
    assert kept.shape == (5, rows, 128 // CELL, 3)
    np.testing.assert_allclose(kept, cart_cells(list(clip)), rtol=2e-3)


def test_a_frames_cells_do_not_depend_on_the_clip_it_came_in() -> None:
    # what makes a replay after a restart keep the same band however clips were cut
    clip = _clip(6, seed=1)
    whole = kept_cells(clip)
    assert whole is not None
    for i in range(len(clip)):
        alone = kept_cells(clip[i : i + 1])
        assert alone is not None and np.array_equal(alone[0], whole[i])


def test_a_brighter_frame_gives_the_same_cells() -> None:
    # lighting scales the whole frame; the band is read as shares of its mean brightness
    clip = _clip(1, seed=2) // 2
    brighter = kept_cells(clip * 2)
    assert brighter is not None
    np.testing.assert_allclose(brighter, kept_cells(clip), rtol=2e-3)


@pytest.mark.parametrize(
    ("height", "width", "top"), [(96, 128, 1.0), (12, 128, 0.72), (96, 4, 0.72)]
)
def test_no_band_is_kept_where_it_holds_no_whole_cell(height: int, width: int, top: float) -> None:
    assert kept_cells(_clip(2, height, width), top) is None
