"""The crop-match probe: crops land on the product, the scores count what they claim."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from model.evaluate.crop_match import (
    HUE_BINS,
    CropMatcher,
    Crops,
    colour_accuracy,
    colour_histogram,
    crop_accuracy,
    episode_accuracy,
    episode_ids,
    load_crops,
    matcher_accuracy,
    sampled_crops,
    square_crop,
    template_accuracy,
    template_scores,
    train_matcher,
)
from model.synth.reader import read_dataset


def _pictures(hues: list[tuple[int, int, int]], size: int = 32) -> np.ndarray:
    """Plain light pictures with a coloured product in the middle."""
    pictures = np.full((len(hues), size, size, 3), 236, dtype=np.uint8)
    for picture, colour in zip(pictures, hues, strict=True):
        picture[6:26, 10:22] = colour
    return pictures


def test_a_square_crop_is_centred_on_the_box_at_the_asked_size() -> None:
    frame = np.zeros((144, 192, 3), dtype=np.uint8)
    frame[40:80, 100:120] = (220, 20, 20)  # a product 20 px wide, 40 tall
    box = (110 / 192, 60 / 144, 20 / 192, 40 / 144)
    crop = square_crop(frame, box, 48)
    assert crop.shape == (48, 48, 3)
    assert crop[24, 24, 0] > 200  # the middle is the product
    assert crop[24, 2, 0] < 30  # beside it (the square is wider than the box) is not
    red_rows = np.flatnonzero(crop[:, 24, 0] > 110)
    assert 0.8 < len(red_rows) / 48 < 0.95  # the box's long side, with the margin around it


def test_colour_histograms_put_a_hue_in_its_bin_and_ignore_grey() -> None:
    red, green, grey = (
        np.full((1, 8, 8, 3), c, dtype=np.uint8)
        for c in ((230, 20, 20), (20, 230, 20), (128, 128, 128))
    )
    h = colour_histogram(torch.from_numpy(np.concatenate([red, green, grey])))
    assert h.shape == (3, HUE_BINS)
    assert h[0].argmax() == 0 and h[1].argmax() == HUE_BINS // 3
    assert torch.allclose(h[:2].square().sum(-1), torch.ones(2))
    assert h[2].abs().sum() == 0


def test_both_scores_name_a_crop_that_is_its_own_picture() -> None:
    pictures = _pictures([(220, 30, 30), (30, 200, 40), (40, 40, 210), (220, 200, 30)])
    crops = Crops(
        images=pictures[[2, 0, 3, 1, 1]],
        product=np.array([2, 0, 3, 1, 1]),
        store=np.zeros(5, dtype=np.int64),
        catalogs=pictures[None],
    )
    assert colour_accuracy(crops) == 1.0
    torch.manual_seed(0)
    assert matcher_accuracy(CropMatcher(), crops) == 1.0  # the same input, the same embedding
    wrong = Crops(crops.images, np.array([0, 2, 1, 3, 0]), crops.store, crops.catalogs)
    assert colour_accuracy(wrong) == 0.0


def test_crops_of_a_dataset_are_its_products_among_its_catalog(
    tmp_path, make_small_dataset
) -> None:
    dataset = read_dataset(make_small_dataset(tmp_path / "data"))
    crops = load_crops(dataset, size=32)
    boxes_on_whole_seconds = sum(
        1 for v in dataset.videos.values() for b in v.boxes if abs(b.t - round(b.t)) < 1e-3
    )
    assert len(crops.images) == boxes_on_whole_seconds > 20
    assert crops.images.shape[1:] == (32, 32, 3)
    assert crops.catalogs.shape == (1, len(dataset.catalog), 32, 32, 3)
    assert crops.product.min() >= 0 and crops.product.max() < len(dataset.catalog)
    assert crops.episode is not None  # handlings: one product each, fewer than the crops
    for episode in np.unique(crops.episode):
        assert len(set(crops.product[crops.episode == episode])) == 1
    assert 0 < len(np.unique(crops.episode)) < len(crops.images)


def test_a_short_training_run_lowers_the_match_loss() -> None:
    rng = np.random.default_rng(0)
    colours = [
        [(220, 30, 30), (30, 200, 40), (40, 40, 210), (220, 200, 30)],
        [(200, 40, 200), (30, 200, 200), (120, 60, 20), (20, 20, 20)],
    ]
    catalogs = np.stack([_pictures(store) for store in colours])  # two stores of four
    store, product = np.repeat([0, 1], 48), np.tile(np.arange(4), 24)
    noisy = catalogs[store, product].astype(int) + rng.integers(-20, 21, (96, 32, 32, 3))
    crops = Crops(np.clip(noisy, 0, 255).astype(np.uint8), product, store, catalogs)
    records: list[dict[str, object]] = []
    train_matcher(crops, crops, epochs=4, views=False, batch_size=16, log=records.append)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert all(0.0 <= float(r["val_accuracy"]) <= 1.0 for r in records)
    assert float(records[-1]["train_loss"]) < float(records[0]["train_loss"]) / 2


def test_the_template_that_fits_is_the_pictured_products_whatever_the_light() -> None:
    rng = np.random.default_rng(0)
    pictures = np.full((3, 64, 64, 3), 236, dtype=np.uint8)
    pictures[0, 8:56, 20:44] = (200, 30, 30)  # red, tall
    pictures[0, 20:30, 20:44] = (240, 240, 240)  # with a white band
    pictures[1, 8:56, 20:44] = (30, 30, 200)  # the same shape in blue
    pictures[1, 20:30, 20:44] = (240, 240, 240)
    pictures[2, 20:44, 8:56] = (200, 30, 30)  # red, wide, no band
    crops = rng.integers(0, 255, (3, 64, 64, 3)).astype(np.uint8)  # clutter around
    for k in range(3):  # each product in the middle of its crop, in dimmer light
        crops[k, 4:60, 4:60] = (pictures[k, 4:60, 4:60] * 0.7).astype(np.uint8)
    scores = template_scores(torch.from_numpy(crops), pictures)
    assert scores.shape == (3, 3)
    assert scores.argmax(1).tolist() == [0, 1, 2]
    found = Crops(crops, np.arange(3), np.zeros(3, dtype=np.int64), pictures[None])
    assert template_accuracy(found) == 1.0
    assert template_accuracy(replace(found, product=np.array([1, 2, 0]))) == 0.0


def test_crops_of_never_filmed_stores_show_their_own_products() -> None:
    crops = sampled_crops(2, 40, seed=5, size=48)
    assert crops.catalogs.shape == (2, 24, 48, 48, 3)
    assert crops.images.shape[1:] == (48, 48, 3)
    assert set(crops.store.tolist()) == {0, 1}
    assert crops.product.min() >= 0 and crops.product.max() < 24
    assert crops.episode is not None and len(np.unique(crops.episode)) < len(crops.images)
    # with no training at all, the pictured product fits its crop far above chance (1 / 24)
    assert template_accuracy(crops) > 0.3


def test_a_handling_is_one_product_held_over_seconds_in_a_row() -> None:
    handled = [
        ("v1", 3, "A"),
        ("v1", 4, "A"),
        ("v1", 5, "A"),  # one handling
        ("v1", 9, "A"),  # a gap: the next
        ("v1", 10, "B"),  # another product right after
        ("v2", 11, "B"),  # another video
    ]
    assert episode_ids(handled).tolist() == [0, 0, 0, 1, 2, 3]


def test_a_handlings_crops_vote_together() -> None:
    pictures = np.zeros((1, 3, 8, 8, 3), dtype=np.uint8)
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    # handling 0 (product 1): two crops lean a little to product 0, one is sure of 1
    # handling 1 (product 2): one crop, right
    scores = np.array(
        [[0.50, 0.45, 0.0], [0.50, 0.45, 0.0], [0.0, 0.9, 0.0], [0.1, 0.2, 0.8]], np.float32
    )
    crops = Crops(
        images,
        np.array([1, 1, 1, 2]),
        np.zeros(4, dtype=np.int64),
        pictures,
        np.array([0, 0, 0, 1]),
    )
    assert crop_accuracy(crops, scores) == 0.5
    assert episode_accuracy(crops, scores) == 1.0
    one_each = replace(crops, episode=None)  # no handlings known: each crop on its own
    assert episode_accuracy(one_each, scores) == 0.5
