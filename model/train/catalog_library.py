"""A library of catalog images far larger than the stores the training videos show.

A retailer holds product pictures for many more products than it has annotated video of.
Backbone pretraining measured that the number of *stores* (catalogs) seen, not pixels or
epochs, is what teaches a token to match a product it never saw to its picture
(docs/RESULTS.md, "Recognition: pixels or stores?"). The library gives each batch the
catalog of one more store, never filmed: its product pictures, and its products pasted
onto the batch's frames as a hand shows them (front or back, lit and noisy like video).

The library's products are drawn by the generator's own catalog code from a seed of their
own (``LIBRARY_SEED``), so they are products of stores no dataset of ours draws: a held-out
store's products are never in it (tested).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.catalog_view import catalog_view
from model.synth.catalog import make_store_catalog
from model.synth.products import ProductStyle, draw_product, reference_image
from model.train.composites import paste, resize

#: The library's catalog seed: no dataset in scripts/ or docs/ is drawn from it.
LIBRARY_SEED = 1_000_003


@dataclass(frozen=True)
class LibraryStore:
    """One never-filmed store: its products' looks, catalog images ``(K, s, s, 3)`` and
    those images as the backbone is shown them (``model.catalog_view``)."""

    styles: tuple[ProductStyle, ...]
    images: np.ndarray
    views: np.ndarray


class CatalogLibrary:
    """``stores`` catalogs of ``num_skus`` products each, drawn on demand."""

    def __init__(
        self,
        stores: int,
        image_size: int,
        tiles: int = 1,
        *,
        num_skus: int = 24,
        seed: int = LIBRARY_SEED,
    ) -> None:
        if stores < 1:
            raise ValueError("a catalog library needs at least one store")
        self.stores, self.image_size, self.tiles = stores, image_size, tiles
        self.num_skus, self.seed = num_skus, seed

    @functools.lru_cache(maxsize=64)  # noqa: B019 -- one library per run; a few stores kept
    def store(self, index: int) -> LibraryStore:
        """Store ``index``'s products, the same on every call and run."""
        items = make_store_catalog(self.seed, index, self.num_skus)
        images = np.stack(
            [resize(np.array(reference_image(item.style)), self.image_size) for item in items]
        )
        views = np.stack([catalog_view(image, self.tiles) for image in images])
        return LibraryStore(tuple(item.style for item in items), images, views)


def library_composite(
    background: np.ndarray,
    style: ProductStyle,
    rng: np.random.Generator,
    grid: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """A library product on ``background`` as video shows it, and the cells it covers.

    Drawn from its look, not cut out of its picture: a fifth of the time its back (the
    renderer shows the back while a product is inspected), under a per-channel exposure
    and sensor noise in the generator's ranges (the pasted product, unlike the frame it
    lands on, has not been through the camera).
    """
    piece = draw_product(style, back=bool(rng.random() < 0.2))
    pixels = np.asarray(piece, dtype=np.float32).copy()  # (h, w, 4) RGBA
    gain = rng.uniform(0.85, 1.1) * rng.uniform(0.93, 1.07, size=3)
    pixels[..., :3] *= gain
    lit = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGBA")
    image, cells = paste(background, lit, rng, grid)
    noisy = image.astype(np.float32) + rng.normal(0, rng.uniform(0.0, 3.0), image.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8), cells
