"""The box probe: which frames and cells it reads, and a ridge fit that finds what is there."""

from __future__ import annotations

import numpy as np

from model import ModelConfig
from model.evaluate.box_probe import box_examples, channel_spectrum, ridge_r2
from model.synth.records import BoxRecord, Span, VideoAnnotation


def _annotation(boxes: tuple[BoxRecord, ...]) -> VideoAnnotation:
    spans = (Span("put_in_cart", "A", 1.0, 3.0),)
    return VideoAnnotation(
        "v", "train", "videos/v.mp4", 640, 480, 30.0, 300, 10.0, 5.0, spans, boxes, {}
    )


def test_examples_take_frames_with_a_box_near_and_the_cell_of_its_centre(
    tiny_cfg: ModelConfig,
) -> None:
    rows, cols = tiny_cfg.grid
    s, c = tiny_cfg.tokens_per_frame, 3
    tokens = np.arange(6 * s * c, dtype=np.float32).reshape(6, s, c)  # (T, S, C)
    # boxes at 5 FPS: one at t = 2.0 (frame 2 of the 1 FPS memory), one at 2.7 (no frame
    # within 0.1 s of it), one at 4.0 in the bottom-right cell
    boxes = (
        BoxRecord(2.0, "put_in_cart", "A", (0.3, 0.6, 0.2, 0.1)),
        BoxRecord(2.7, "put_in_cart", "A", (0.5, 0.5, 0.2, 0.2)),
        BoxRecord(4.0, "put_in_cart", "A", (0.99, 0.99, 0.05, 0.05)),
    )
    whole, cell, targets = box_examples(tokens, _annotation(boxes), tiny_cfg)
    assert whole.shape == (2, s * c) and cell.shape == (2, c) and targets.shape == (2, 6)
    np.testing.assert_array_equal(whole[0], tokens[2].reshape(-1))
    r, k = int(0.6 * rows), int(0.3 * cols)
    np.testing.assert_array_equal(cell[0], tokens[2, r * cols + k])
    np.testing.assert_array_equal(cell[1], tokens[4, s - 1])
    np.testing.assert_allclose(targets[0], [0.3, 0.6, 0.2, 0.1, 0.3 * cols - k, 0.6 * rows - r])


def test_examples_of_a_video_without_boxes_are_empty(tiny_cfg: ModelConfig) -> None:
    tokens = np.zeros((4, tiny_cfg.tokens_per_frame, 2), dtype=np.float32)
    whole, cell, targets = box_examples(tokens, _annotation(()), tiny_cfg)
    assert len(whole) == len(cell) == len(targets) == 0


def test_ridge_finds_a_linear_target_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    for features in (8, 400):  # fewer and more features than examples: both solves
        x = rng.normal(size=(300, features))
        x_test = rng.normal(size=(200, features))
        w = rng.normal(size=(features, 1))
        y = np.hstack([x @ w, rng.normal(size=(300, 1))])
        y_test = np.hstack([x_test @ w, rng.normal(size=(200, 1))])
        r2 = ridge_r2(x, y, x_test, y_test, penalty=1e-3 if features < 300 else 1.0)
        if features < 300:
            assert r2[0] > 0.99
        else:  # more unknowns than examples: partly found, still well above noise
            assert r2[0] > 0.3
        assert r2[1] < 0.1


def test_spectrum_tells_one_loud_channel_from_even_ones() -> None:
    rng = np.random.default_rng(0)
    even = rng.normal(size=(2000, 40))
    loud = even * np.r_[20.0, np.ones(39)]  # channel 0 twenty times the others
    flat, peaked = channel_spectrum(even), channel_spectrum(loud)
    assert flat["top_over_median"] < 1.2 and abs(flat["top10_share"] - 0.25) < 0.03
    assert peaked["top_over_median"] > 15 and peaked["top10_share"] > 0.9
