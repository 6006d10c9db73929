"""The catalog: stable ids, distinct looks, one reference image per SKU."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
from PIL import Image

from model.synth.catalog import CatalogItem, make_catalog, make_store_catalog, sku_id
from model.synth.products import draw_product, reference_image


def test_ids_are_stable_and_names_unique() -> None:
    catalog = make_catalog(3, 30)
    assert [c.sku for c in catalog] == [f"SKU-{i:04d}" for i in range(1, 31)]
    assert sku_id(0) == "SKU-0001"
    assert len({c.name for c in catalog}) == 30
    assert all(0 < c.price < 20 for c in catalog)


def test_same_seed_same_catalog_other_seed_other_looks() -> None:
    assert make_catalog(3, 12) == make_catalog(3, 12)
    assert [c.style for c in make_catalog(3, 12)] != [c.style for c in make_catalog(4, 12)]


def test_skus_sharing_a_silhouette_differ_in_hue() -> None:
    """The assignment rule that keeps products apart for a small backbone."""
    catalog = make_catalog(5, 24)
    for a, b in itertools.combinations(catalog, 2):
        if a.style.shape == b.style.shape:
            assert _hue_distance(a.style.body, b.style.body) > 0.25, (a.sku, b.sku)


def test_single_store_catalog_is_that_of_the_first_generator_version() -> None:
    """The shipped checkpoint was trained on ``make_catalog(0, 24)``: store catalogs must
    not change a single draw of it."""
    fields = [
        (c.sku, c.name, c.price, *(getattr(c.style, k) for k in _STYLE_V1), c.style.aspect)
        for c in make_catalog(0, 24)
    ]
    assert hashlib.sha256(repr(fields).encode()).hexdigest()[:16] == "d84eb032a6eb1ab4"


def test_store_catalogs_share_no_sku_and_no_look_alike_image() -> None:
    first, second = make_store_catalog(5, 0, 24), make_store_catalog(5, 1, 24)
    assert [c.sku for c in first] == [f"S001-{i:04d}" for i in range(1, 25)]
    assert all(c.sku.startswith("S002-") for c in second)
    assert not {c.sku for c in first} & {c.sku for c in second}
    a, b = _images(first), _images(second)
    distance = np.abs(a[:, None] - b[None, :]).mean(axis=(2, 3, 4))  # (24, 24) across stores
    assert distance.min() > 8.0, np.unravel_index(distance.argmin(), distance.shape)
    within = np.abs(a[:, None] - a[None, :]).mean(axis=(2, 3, 4)) + 255 * np.eye(len(a))
    assert within.min() > 8.0


def test_store_catalog_keeps_the_silhouette_hue_rule_and_depends_on_seed_and_store() -> None:
    catalog = make_store_catalog(2, 7, 24)
    for a, b in itertools.combinations(catalog, 2):
        if a.style.shape == b.style.shape:
            assert _hue_distance(a.style.body, b.style.body) > 0.25, (a.sku, b.sku)
    assert make_store_catalog(2, 7, 24) == catalog
    assert [c.style for c in make_store_catalog(3, 7, 24)] != [c.style for c in catalog]
    assert len({c.style.aspect for c in catalog}) == 24  # proportions vary per product


def test_reference_images_are_distinct(synth_data) -> None:
    images = {}
    for entry in synth_data.dataset.catalog:
        path = synth_data.dataset.image_path(entry.sku)
        with Image.open(path) as image:
            assert image.size == (128, 128) and image.mode == "RGB"
            images[entry.sku] = np.asarray(image, np.float32)
    assert len(images) == synth_data.config.num_skus
    for (a, x), (b, y) in itertools.combinations(images.items(), 2):
        assert np.abs(x - y).mean() > 8.0, f"{a} and {b} look alike"


def test_reference_image_is_the_video_sprite_on_a_plain_background() -> None:
    style = make_catalog(1, 3)[2].style
    image = np.asarray(reference_image(style, 128), np.int16)
    assert (image[0, 0] == image[-1, -1]).all()  # plain corners
    sprite = draw_product(style, 110)
    alpha = np.asarray(sprite.getchannel("A"))
    assert alpha.max() == 255 and alpha[0, 0] == 0  # a silhouette, not a rectangle
    front, back = draw_product(style, 64), draw_product(style, 64, back=True)
    assert np.abs(np.asarray(front, np.int16) - np.asarray(back, np.int16)).mean() > 5


def _hue_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    import colorsys

    ha = colorsys.rgb_to_hsv(*(c / 255 for c in a))[0]
    hb = colorsys.rgb_to_hsv(*(c / 255 for c in b))[0]
    d = abs(ha - hb) % 1.0
    return min(d, 1.0 - d)


_STYLE_V1 = (
    "shape",
    "body",
    "accent",
    "label_bg",
    "label_fg",
    "pattern",
    "label",
    "brand",
    "barcode",
)


def _images(catalog: tuple[CatalogItem, ...]) -> np.ndarray:
    """Reference images at half size, (N, 64, 64, 3) float."""
    return np.stack([np.asarray(reference_image(c.style), np.float32)[::2, ::2] for c in catalog])
