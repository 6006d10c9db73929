"""Catalog pictures seen as video sees them: same shape, a new view every call, seeded."""

from __future__ import annotations

import numpy as np

from model.train.prototype_views import prototype_views


def _pictures() -> np.ndarray:
    pictures = np.full((3, 64, 64, 3), 236, dtype=np.uint8)  # plain catalog backdrops
    pictures[0, 12:52, 22:42] = (200, 30, 30)
    pictures[1, 8:56, 16:48] = (30, 160, 40)
    pictures[2, 20:44, 20:44] = (40, 40, 210)
    return pictures


def test_views_keep_shape_and_type_and_are_the_same_for_the_same_seed() -> None:
    pictures = _pictures()
    a = prototype_views(pictures, np.random.default_rng(3))
    b = prototype_views(pictures, np.random.default_rng(3))
    assert a.shape == pictures.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_every_call_shows_each_picture_differently() -> None:
    pictures = _pictures()
    rng = np.random.default_rng(0)
    first, second = prototype_views(pictures, rng), prototype_views(pictures, rng)
    for view, again, picture in zip(first, second, pictures, strict=True):
        assert np.abs(view.astype(int) - picture).mean() > 1.0  # not the clean picture
        assert not np.array_equal(view, again)


def test_a_view_mostly_still_shows_its_product_colour_where_the_product_was() -> None:
    """Pose, light and a hand change a little; the product's colour stays where it was
    (a hand may cover much of it now and then, so not in every view)."""
    pictures = np.full((3, 64, 64, 3), 236, dtype=np.uint8)
    for channel in range(3):  # a red, a green and a blue product filling most of the picture
        pictures[channel, 4:60, 8:56] = 30
        pictures[channel, 4:60, 8:56, channel] = 210
    product = np.zeros((64, 64), dtype=bool)
    product[4:60, 8:56] = True
    rng = np.random.default_rng(1)
    kept = np.zeros(3, dtype=int)
    for _ in range(20):
        for channel, view in enumerate(prototype_views(pictures, rng)):
            kept[channel] += np.median(view[product], axis=0).argmax() == channel
    assert (kept >= 18).all(), kept
