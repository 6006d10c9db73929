"""The cart band read for how much a handling changed what lies in the cart."""

import numpy as np
import pytest

from app.reconcile.cart_changes import (
    cart_candidates,
    cart_change,
    cart_events,
    event_candidates,
    moment_changes,
)
from app.reconcile.moves import Moment
from app.video.cart_band import CART_TOP, CELL, TOP_MARGIN, cart_cells

HEIGHT, WIDTH = 144, 192
BAND = round(CART_TOP * HEIGHT) + TOP_MARGIN  # first row of the band


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """Frames of a still cart band (a wire pattern) under a changing shelf, with noise."""
    rng = np.random.default_rng(seed)
    wire = rng.integers(60, 200, size=(HEIGHT - BAND, WIDTH, 3))
    frames = []
    for _ in range(count):
        frame = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3)).astype(np.float64)  # shelves
        frame[BAND:] = wire + rng.normal(0.0, 3.0, wire.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def _put(frames: list[np.ndarray], at: int, x: int) -> None:
    """An item (a 24 x 16 red block) lies in the cart from frame ``at`` on."""
    for frame in frames[at:]:
        frame[BAND + 6 : BAND + 30, x : x + 16] = (220, 30, 30)


def _arm(frame: np.ndarray, x: int) -> None:
    """The arm crossing the band: a skin-coloured bar over its full height."""
    frame[BAND:, x : x + 20] = (140, 85, 55)


def test_cells_are_the_band_only_and_ignore_the_lighting() -> None:
    frames = _frames(2)
    cells = cart_cells(frames)
    assert cells.shape == (2, (HEIGHT - BAND) // CELL, WIDTH // CELL, 3)
    darker = [(f * 0.6).astype(np.uint8) for f in frames]
    # a frame 40 % darker reads the same cells: each is a share of its band's brightness
    assert np.abs(cart_cells(darker) - cells).max() < 0.03


def test_an_item_put_in_changes_the_band_and_a_return_to_the_shelf_does_not() -> None:
    frames = _frames(30)
    _put(frames, 12, x=40)
    cells = cart_cells(frames)
    put = cart_change(cells, 9, 12)  # the run just before the item lies there
    elsewhere = cart_change(cells, 20, 23)  # a later handling that left the cart as it was
    assert put > 0.3
    assert elsewhere < 0.05


def test_the_arm_over_the_band_in_some_frames_is_not_a_change() -> None:
    frames = _frames(30, seed=1)
    for t, x in zip(range(4, 9), (170, 150, 130, 110, 90), strict=True):
        _arm(frames[t], x)  # reaching out before the run
    for t, x in zip(range(12, 15), (90, 120, 150), strict=True):
        _arm(frames[t], x)  # and back after it
    cells = cart_cells(frames)
    assert cart_change(cells, 9, 12) < 0.05
    # every frame on one side covered where the item would be: a change, as it must be
    assert cart_change(cart_cells(frames[:12] + [_covered(f) for f in frames[12:]]), 9, 12) > 0.1


def _covered(frame: np.ndarray) -> np.ndarray:
    out = frame.copy()
    _arm(out, 96)  # three whole cells
    return out


def test_a_run_at_an_edge_of_the_video_reads_no_change() -> None:
    cells = cart_cells(_frames(5))
    assert cart_change(cells, 0, 2) == 0.0
    assert cart_change(cells, 3, 5) == 0.0


def test_each_moment_reads_its_own_steps() -> None:
    frames = _frames(30, seed=2)
    _put(frames, 12, x=100)
    cells = cart_cells(frames)
    moments = [Moment(+1, 9, 12, np.ones(1)), Moment(-1, 20, 22, np.ones(1))]
    changes = moment_changes(cells, moments)
    assert changes[0] > 0.3 > 0.05 > changes[1]


def test_a_band_smaller_than_a_cell_is_refused() -> None:
    with pytest.raises(ValueError, match="smaller than a cell"):
        cart_cells([np.zeros((20, 4, 3), dtype=np.uint8)])


def test_the_band_changes_where_an_item_was_put_in_and_nowhere_else() -> None:
    frames = _frames(40, seed=3)
    _put(frames, 12, x=40)
    _put(frames, 30, x=120)
    for t, x in zip(range(20, 24), (170, 140, 110, 80), strict=True):
        _arm(frames[t], x)  # an arm crossing the band changes nothing that stays
    events = cart_events(cart_cells(frames))
    assert len(events) == 2
    (a0, a1), (b0, b1) = events
    assert a0 <= 11 < a1 <= 13 and b0 <= 29 < b1 <= 31


def _answers(length: int, **runs: tuple[int, int, float]) -> dict:
    out: dict = {"fps": 1.0}
    for activity in ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf"):
        start, end, value = runs.get(activity, (0, 0, 0.0))
        out[activity] = [value if start <= t < end else 0.02 for t in range(length)]
    out["take_out_of_cart"] = [0.02] * length
    return out


def test_a_change_no_candidate_explains_becomes_a_candidate_each_way() -> None:
    # the answers saw a handling at 3-5 only; the band also changed at 14-15
    steps = {
        "A": _answers(20, take_from_shelf=(1, 3, 0.9), put_in_cart=(3, 5, 0.8)),
        "B": _answers(20, put_in_cart=(14, 15, 0.3)),
    }
    known = [Moment(+1, 3, 5, np.ones(2))]
    extra = event_candidates(steps, [(4, 6), (14, 15)], known)
    assert [(c.moment.change, c.moment.start, c.moment.end) for c in extra] == [
        (+1, 14, 15),
        (-1, 14, 15),
    ]
    put, take_out = extra
    assert put.moment.peaks.tolist() == [0.02, 0.3] and not put.counted
    assert put.odds == pytest.approx(np.log(0.3 + 1e-3) - np.log(0.02 + 1e-3))
    assert take_out.odds == pytest.approx(0.0)  # no answer prefers the cart or the shelf
    assert event_candidates(steps, [(7, 8)], known) == []  # within the slack of 3-5
    # a change in the video's last step, past the answers' 20 steps, is no candidate
    assert event_candidates(steps, [(20, 21)], known) == []
    assert [c.moment.end for c in event_candidates(steps, [(19, 21)], known)] == [20, 20]


def test_the_cart_candidates_are_the_paths_and_the_bands_with_their_changes() -> None:
    frames = _frames(20, seed=4)
    _put(frames, 5, x=40)  # the put the answers saw
    _put(frames, 15, x=120)  # and one they did not
    steps = {"A": _answers(20, take_from_shelf=(1, 3, 0.9), put_in_cart=(3, 5, 0.8))}
    candidates, changes = cart_candidates(steps, cart_cells(frames))
    read = {(c.moment.change, c.moment.start): x for c, x in zip(candidates, changes, strict=True)}
    assert read[(+1, 3)] > 0.3  # the seen put changed the band
    assert read[(-1, 1)] < 0.05  # the take from the shelf did not
    unseen = [key for key in read if key[1] >= 13]
    assert sorted(k[0] for k in unseen) == [-1, +1]
    assert all(read[key] > 0.3 for key in unseen)
