"""The catalog: stable SKU ids, names, prices and a look per SKU, shared by every video.

Looks are assigned so that products differ where a small backbone can see it: two SKUs
with the same silhouette are at least 120 degrees of hue apart, two with the same hue
have different silhouettes, and pattern and label vary on top of that.

A multi-store dataset gives each store a catalog of its own (``make_store_catalog``),
drawn from the store's own seed with ids ``S003-0012``. The same rule keeps a store's
products apart; across stores, products also vary in proportions, pattern kind and size,
label position and exact hue, so that thousands of them are not copies of each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.synth.products import (
    LABELS,
    PATTERNS,
    SHAPES,
    STORE_PATTERNS,
    ProductStyle,
    hsv_colour,
)
from model.synth.seeding import rng_for

_HUES = 12
_SYLLABLES = ("ka", "lo", "mi", "ra", "ve", "su", "to", "na", "pe", "zu", "bri", "do", "fe", "gu")
_CATEGORIES: dict[str, tuple[str, float]] = {  # name and typical price per silhouette
    "box": ("Crackers", 2.5),
    "cereal": ("Cereal", 4.0),
    "can": ("Soup", 1.8),
    "bottle": ("Juice", 3.0),
    "jar": ("Jam", 3.5),
    "bag": ("Crisps", 2.2),
    "carton": ("Milk", 1.5),
    "pouch": ("Coffee", 6.5),
}
_FLAVOURS = ("Classic", "Berry", "Lemon", "Spicy", "Honey", "Mint", "Cocoa", "Herb", "Sea Salt")


@dataclass(frozen=True)
class CatalogItem:
    """One SKU as the generator knows it (the on-disk entry is ``records.CatalogEntry``)."""

    sku: str
    name: str
    price: float
    style: ProductStyle


def sku_id(index: int) -> str:
    """Stable id of the ``index``-th SKU (0-based): ``SKU-0001`` for index 0."""
    return f"SKU-{index + 1:04d}"


def store_id(index: int) -> str:
    """Stable id of the ``index``-th store (0-based) of a multi-store dataset: ``S001``."""
    return f"S{index + 1:03d}"


def make_catalog(seed: int, num_skus: int) -> tuple[CatalogItem, ...]:
    """``num_skus`` visually distinct products; the same seed gives the same catalog."""
    return _draw_catalog(rng_for(seed, "catalog"), num_skus, sku_id, varied=False)


def make_store_catalog(seed: int, store: int, num_skus: int) -> tuple[CatalogItem, ...]:
    """The catalog of store ``store`` (0-based) of the dataset drawn from ``seed``.

    Drawn from a stream of the store's own, so a store's products do not depend on how
    many stores the dataset has; ids are ``<store id>-<n>`` and never repeat across stores.
    """
    prefix = store_id(store)
    return _draw_catalog(
        rng_for(seed, "store", prefix, "catalog"),
        num_skus,
        lambda i: f"{prefix}-{i + 1:04d}",
        varied=True,
    )


def _draw_catalog(
    rng: np.random.Generator, num_skus: int, sku_of: Callable[[int], str], *, varied: bool
) -> tuple[CatalogItem, ...]:
    """The products of one catalog. ``varied`` draws the per-product proportions, pattern
    size, label position and hue jitter of store catalogs; without it the draws (and so
    the single-store catalog) are those of the first generator version."""
    shapes = list(SHAPES)
    shape_offset = int(rng.integers(len(shapes)))
    hue_offset = float(rng.random()) / _HUES
    items = []
    brands: set[str] = set()
    for i in range(num_skus):
        # Shapes cycle with period 8 and hue bins step by 5 (coprime with 12): SKUs i and
        # i + 8 share a shape and sit 4 bins (120 degrees) apart; i and i + 12 share a bin
        # and differ in shape. Past 24 SKUs the value (light/dark) alternates as well.
        shape = shapes[(i + shape_offset) % len(shapes)]
        hue = hue_offset + ((5 * i) % _HUES) / _HUES
        if varied:  # within a bin's quarter: same-shape products stay over 90 degrees apart
            hue += float(rng.uniform(-0.25, 0.25)) / _HUES
        dark = (i // 24) % 2 == 1
        body = hsv_colour(hue, rng.uniform(0.6, 0.9), rng.uniform(0.35, 0.55) if dark else 0.9)
        accent = hsv_colour(hue + rng.choice([0.33, 0.5, 0.66]), rng.uniform(0.5, 1.0), 0.95)
        light_label = bool(rng.random() < 0.6)
        label_bg = (245, 243, 235) if light_label else (25, 25, 30)
        label_fg = hsv_colour(hue, 0.9, 0.45) if light_label else (250, 220, 60)
        brand = _new_brand(rng, brands)
        pattern = str(PATTERNS[(i * 7 + int(rng.integers(3))) % len(PATTERNS)])
        label = str(LABELS[int(rng.integers(len(LABELS)))])
        barcode = int(rng.integers(2**31))
        aspect_scale, pattern_scale, label_shift = 1.0, 1.0, 0.0
        if varied:
            pattern = str(STORE_PATTERNS[int(rng.integers(len(STORE_PATTERNS)))])
            aspect_scale = float(rng.uniform(0.8, 1.2))
            pattern_scale = float(rng.uniform(0.6, 1.8))
            label_shift = float(rng.uniform(-0.12, 0.12))
        style = ProductStyle(
            shape=shape,
            body=body,
            accent=accent,
            label_bg=label_bg,
            label_fg=label_fg,
            pattern=pattern,
            label=label,
            brand=brand,
            barcode=barcode,
            aspect_scale=aspect_scale,
            pattern_scale=pattern_scale,
            label_shift=label_shift,
        )
        category, base_price = _CATEGORIES[shape]
        name = f"{brand.title()} {rng.choice(_FLAVOURS)} {category}"
        price = round(max(0.49, base_price * rng.uniform(0.6, 1.6)), 1) - 0.01
        items.append(CatalogItem(sku=sku_of(i), name=name, price=round(price, 2), style=style))
    return tuple(items)


def _new_brand(rng: np.random.Generator, taken: set[str]) -> str:
    """A short brand no other SKU of the catalog prints (so names are unique too)."""
    while True:
        brand = "".join(rng.choice(_SYLLABLES, size=2)).upper()[:4]
        if brand not in taken:
            taken.add(brand)
            return brand
