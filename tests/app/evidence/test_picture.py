"""Drawing one flag's picture: its size follows from its parts, and each part is where
``Drawn`` says, the catalog image and the boxes included."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.evidence.picture import (
    BOX,
    CATALOG_SIDE,
    FRAME_HEIGHT,
    FlagView,
    Frame,
    Strip,
    draw,
    fitted_catalog,
)


def thumb(shade: int) -> Image.Image:
    return Image.new("RGB", (160, 120), (shade, shade, shade))


def catalog() -> Image.Image:
    pixels = np.zeros((128, 96, 3), dtype=np.uint8)
    pixels[:, :48] = (12, 200, 90)
    pixels[:, 48:] = (250, 220, 10)
    return Image.fromarray(pixels)


def test_frames_catalog_and_box_land_where_drawn_says() -> None:
    frames = [
        Frame(18.0, thumb(60), inside=False),
        Frame(19.0, thumb(90), inside=True, box=(0.5, 0.5, 0.5, 0.5)),
        Frame(20.0, thumb(120), inside=True),
    ]
    view = FlagView(
        caption=["NOT SCANNED SOUP", "a second line"],
        strips=[Strip("put_in_cart 19-20 s", frames), Strip("no event", [], "nothing seen")],
        catalog_image=catalog(),
        catalog_label="SOUP: Soup",
    )
    drawn = draw(view)
    image = np.asarray(drawn.image)

    # one rectangle per frame, each the thumbnail enlarged to FRAME_HEIGHT rows
    assert len(drawn.frames) == 3
    widths = {r[2] - r[0] for r in drawn.frames}
    assert widths == {240} and {r[3] - r[1] for r in drawn.frames} == {FRAME_HEIGHT}
    assert drawn.image.width > 3 * 240 + CATALOG_SIDE
    assert drawn.image.height > 2 * FRAME_HEIGHT  # two strips, the empty one drawn too

    left, top, right, bottom = drawn.frames[2]
    assert (image[top:bottom, left:right] == 120).all()  # no box: the frame untouched
    left, top, right, bottom = drawn.frames[1]
    boxed = image[top:bottom, left:right]
    assert (boxed == BOX).all(axis=-1).sum() > 4 * 100  # the box's outline, 3 px wide
    assert (boxed[FRAME_HEIGHT // 2, (right - left) // 2] == 90).all()  # only its outline

    assert drawn.catalog is not None
    left, top, right, bottom = drawn.catalog
    expected = np.asarray(fitted_catalog(catalog()))
    assert max(right - left, bottom - top) == CATALOG_SIDE
    assert np.array_equal(image[top:bottom, left:right], expected)


def test_a_product_missing_from_the_catalog_leaves_its_panel_empty() -> None:
    view = FlagView(["x"], [Strip("no event", [], "nothing seen")], None, "SOUP: not in catalog")
    drawn = draw(view)
    assert drawn.catalog is None and drawn.frames == []
    assert drawn.image.mode == "RGB"
