"""A catalog image's product tiled at video size keeps its colours and its background."""

from __future__ import annotations

import numpy as np

from model.catalog_view import catalog_view


def _catalog_image() -> np.ndarray:
    image = np.full((96, 96, 3), 236, dtype=np.uint8)  # the catalog's plain background
    image[8:88, 30:66] = (200, 30, 30)  # a tall red product
    image[40:56, 30:66] = (20, 20, 200)  # its blue label
    return image


def test_one_tile_is_the_picture_itself() -> None:
    image = _catalog_image()
    assert catalog_view(image, 1) is image


def test_tiles_draw_the_product_smaller_in_every_cell_on_the_plain_background() -> None:
    image = _catalog_image()
    view = catalog_view(image, 3)
    assert view.shape == image.shape and view.dtype == np.uint8
    red = (view[..., 0] > 150) & (view[..., 1] < 80)
    blue = (view[..., 2] > 150) & (view[..., 0] < 80)
    for r in range(3):
        for c in range(3):
            cell = np.s_[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]
            ys, xs = np.nonzero(red[cell])
            assert len(ys) and blue[cell].any()
            # at most 90 % of the cell's height, narrowed by the video's squeeze (0.75)
            height, width = ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min()
            assert 24 <= height <= 29 and abs(width / height - 36 / 80 * 0.75) < 0.1
    # red + blue + background: the whole product's colours, in the same proportion
    plain = (view == 236).all(-1)
    assert (red | blue | plain).mean() > 0.97
    product_share = red.sum() / max(blue.sum(), 1)
    assert abs(product_share - (80 - 16) / 16) < 1.0


def test_a_blank_picture_is_left_as_it_is() -> None:
    blank = np.full((64, 64, 3), 236, dtype=np.uint8)
    assert np.array_equal(catalog_view(blank, 4), blank)
