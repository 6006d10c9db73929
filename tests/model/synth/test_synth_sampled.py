"""Never-filmed stores rendered at a low rate: deterministic, annotated, their own catalog."""

from __future__ import annotations

import numpy as np
import pytest

from model.synth.catalog import make_store_catalog
from model.synth.config import SynthConfig
from model.synth.sampled import sampled_plan, sampled_store
from model.synth.video import build_world


def test_a_store_is_the_same_every_time_and_differs_from_the_next() -> None:
    first, again = sampled_store(5, 3, 6), sampled_store(5, 3, 6)
    assert np.array_equal(first.frames, again.frames)
    assert first.annotation == again.annotation
    other = sampled_store(5, 4, 6)
    assert [i.style for i in other.catalog] != [i.style for i in first.catalog]
    assert not np.array_equal(other.pictures, first.pictures)
    assert not np.array_equal(other.frames, first.frames)


def test_frames_boxes_and_pictures_follow_the_rate_and_the_stores_catalog() -> None:
    config = SynthConfig()
    store = sampled_store(11, 0, 8, fps=2, config=config)
    assert store.frames.shape == (16, config.video.height, config.video.width, 3)
    assert store.frames.dtype == np.uint8
    assert [i.sku for i in store.catalog] == [i.sku for i in make_store_catalog(11, 0, 24)]
    assert store.pictures.shape[0] == config.num_skus
    skus = {i.sku for i in store.catalog}
    assert store.annotation.box_fps == 2.0
    for box in store.annotation.boxes:
        assert box.sku in skus
        assert (box.t * 2) == pytest.approx(round(box.t * 2))  # on a sampled frame
        assert 0 < box.box[2] <= 1 and 0 < box.box[3] <= 1
    assert {s.sku for s in store.annotation.spans} <= skus
    # every box lies inside an activity span of its product
    for box in store.annotation.boxes:
        assert any(
            s.sku == box.sku and s.start - 1e-6 <= box.t < s.end + 1e-6
            for s in store.annotation.spans
        )


def test_frames_are_the_rendered_world_as_the_encoder_returns_it() -> None:
    config = SynthConfig()
    store = sampled_store(2, 1, 4, config=config)
    plan = sampled_plan(2, 1, 4, config)
    world = build_world(plan, store.catalog, config)
    elsewhere = sampled_store(2, 2, 4, config=config)
    for k in range(4):
        drawn = world.renderer.render(k * config.video.fps).image.astype(float)
        error = np.abs(store.frames[k].astype(float) - drawn).mean()
        # the encoder's losses (it smooths the sensor noise away): some, but far less than
        # what tells two stores' frames apart
        assert 0 < error < 16
        assert np.abs(elsewhere.frames[k].astype(float) - drawn).mean() > 2 * error


def test_a_rate_that_does_not_divide_the_videos_is_refused() -> None:
    with pytest.raises(ValueError, match="must divide"):
        sampled_store(1, 0, 2, fps=3)
