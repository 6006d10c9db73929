"""The catalog library: stores never filmed, whose products join backbone pretraining."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from model.data.handled import box_cells
from model.synth.catalog import make_store_catalog
from model.train.catalog_library import LIBRARY_SEED, CatalogLibrary, library_composite
from model.train.pretrain_backbone import (
    FrameSet,
    PretrainConfig,
    StoreCatalogs,
    _batch,
    main,
    pretrain_backbone,
)

REPO = Path(__file__).resolve().parents[3]


def test_a_library_store_is_the_same_on_every_draw_and_unlike_the_others() -> None:
    first, again = CatalogLibrary(50, 64).store(3), CatalogLibrary(50, 64).store(3)
    assert first.images.shape == (24, 64, 64, 3) and first.images.dtype == np.uint8
    assert first.styles == again.styles and np.array_equal(first.images, again.images)
    other = CatalogLibrary(50, 64).store(4)
    assert not set(first.styles) & set(other.styles)
    with pytest.raises(ValueError, match="at least one store"):
        CatalogLibrary(0, 64)


def test_no_dataset_seed_of_the_scripts_or_docs_is_the_librarys() -> None:
    """Held-out stores are drawn from their datasets' seeds: were one the library's, its
    products would be trained on."""
    texts = [p.read_text() for p in [*REPO.glob("scripts/*.sh"), *REPO.glob("docs/*.md")]]
    seeds = {int(s) for text in texts for s in re.findall(r"--seed (\d+)", text)}
    assert {0, 7, 31, 43} <= seeds  # the shipped data and held-out sets are among them
    assert LIBRARY_SEED not in seeds
    library_looks = {c.style for i in range(500) for c in make_store_catalog(LIBRARY_SEED, i, 24)}
    assert set(CatalogLibrary(500, 32).store(499).styles) <= library_looks
    for seed in sorted(seeds):
        for store in range(6):
            assert not library_looks & {c.style for c in make_store_catalog(seed, store, 24)}


def test_a_library_product_is_pasted_where_its_cells_say() -> None:
    rng = np.random.default_rng(1)
    library = CatalogLibrary(5, 128)
    background = np.zeros((128, 128, 3), dtype=np.uint8)
    for k in range(12):
        image, cells = library_composite(background, library.store(0).styles[k], rng, (4, 4))
        assert image.shape == background.shape and image.dtype == np.uint8
        painted = image.astype(int).sum(-1) > 40  # the product, not the added sensor noise
        ys, xs = np.nonzero(painted)
        box = ((xs.min() + xs.max() + 1) / 256, (ys.min() + ys.max() + 1) / 256)
        box += ((xs.max() + 1 - xs.min()) / 128, (ys.max() + 1 - ys.min()) / 128)
        labelled = set(np.flatnonzero(cells).tolist())
        assert labelled and labelled <= set(box_cells(box, (4, 4), 0.0))
        most = painted.reshape(4, 32, 4, 32).sum(axis=(1, 3)).argmax()
        assert int(most) in labelled  # the cell showing most of it is always labelled


def _frames(n: int) -> FrameSet:
    rng = np.random.default_rng(0)
    return FrameSet(
        frames=rng.integers(0, 255, (n, 128, 128, 3), dtype=np.uint8),
        sku=np.array([0, -1] * (n // 2)),
        activity=np.zeros(n, dtype=np.int64),
        handled=np.zeros((n, 16), dtype=bool),
        store=np.zeros(n, dtype=np.int64),
    )


def test_a_batch_labels_library_products_after_the_stores_and_none_last() -> None:
    frames = _frames(8)
    catalogs = StoreCatalogs(("A", "B", "C"), (np.array([0, 1, 2]),))
    catalog = np.zeros((3, 128, 128, 3), dtype=np.uint8)
    config = PretrainConfig(batch_size=8, composites=10, library_share=0.4)
    library = CatalogLibrary(5, 128).store(2)
    rows = np.arange(8)
    args = (frames, rows, 0, catalogs, catalog, [rows], np.random.default_rng(0), config, (4, 4))
    batch = _batch(*args, library)
    assert len(batch.images) == len(batch.product) == 8 + 10
    # video frames: product 0 or none, which now follows the library's 24 products
    assert batch.product[:8].tolist() == [0, 27] * 4
    assert ((batch.product[8:14] >= 0) & (batch.product[8:14] < 3)).all()  # store's own
    assert ((batch.product[14:] >= 3) & (batch.product[14:] < 27)).all()  # 4 of the library
    assert (batch.handled[14:] >= 0).all() and (batch.activity[8:] == -1).all()
    plain = _batch(*args)
    assert plain.product[:8].tolist() == [0, 3] * 4 and len(plain.product) == 18


def test_pretraining_with_a_library_lowers_the_loss_and_the_command_takes_it(
    tmp_path: Path, make_small_dataset
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.5, 0.5, 0.0))
    records: list[dict] = []
    config = PretrainConfig(epochs=3, batch_size=8, composites=8, seed=0, library_stores=30)
    torch.manual_seed(0)
    pretrain_backbone(data, tmp_path / "backbone", config, log=records.append)
    product = [r["train_loss"]["product"] for r in records]
    assert product[-1] < product[0]
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(data), "--out", str(tmp_path / "x"), "--library-stores", "-1"])
    assert exit_info.value.code == 2 and not (tmp_path / "x").exists()
