"""The catalog: stable SKU ids, names, prices and a look per SKU, shared by every video.

Looks are assigned so that products differ where a small backbone can see it: two SKUs
with the same silhouette are at least 120 degrees of hue apart, two with the same hue
have different silhouettes, and pattern and label vary on top of that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.synth.products import LABELS, PATTERNS, SHAPES, ProductStyle, hsv_colour
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


def make_catalog(seed: int, num_skus: int) -> tuple[CatalogItem, ...]:
    """``num_skus`` visually distinct products; the same seed gives the same catalog."""
    rng = rng_for(seed, "catalog")
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
        dark = (i // 24) % 2 == 1
        body = hsv_colour(hue, rng.uniform(0.6, 0.9), rng.uniform(0.35, 0.55) if dark else 0.9)
        accent = hsv_colour(hue + rng.choice([0.33, 0.5, 0.66]), rng.uniform(0.5, 1.0), 0.95)
        light_label = bool(rng.random() < 0.6)
        label_bg = (245, 243, 235) if light_label else (25, 25, 30)
        label_fg = hsv_colour(hue, 0.9, 0.45) if light_label else (250, 220, 60)
        brand = _new_brand(rng, brands)
        style = ProductStyle(
            shape=shape,
            body=body,
            accent=accent,
            label_bg=label_bg,
            label_fg=label_fg,
            pattern=str(PATTERNS[(i * 7 + int(rng.integers(3))) % len(PATTERNS)]),
            label=str(LABELS[int(rng.integers(len(LABELS)))]),
            brand=brand,
            barcode=int(rng.integers(2**31)),
        )
        category, base_price = _CATEGORIES[shape]
        name = f"{brand.title()} {rng.choice(_FLAVOURS)} {category}"
        price = round(max(0.49, base_price * rng.uniform(0.6, 1.6)), 1) - 0.01
        items.append(CatalogItem(sku=sku_id(i), name=name, price=round(price, 2), style=style))
    return tuple(items)


def _new_brand(rng: np.random.Generator, taken: set[str]) -> str:
    """A short brand no other SKU of the catalog prints (so names are unique too)."""
    while True:
        brand = "".join(rng.choice(_SYLLABLES, size=2)).upper()[:4]
        if brand not in taken:
            taken.add(brand)
            return brand
