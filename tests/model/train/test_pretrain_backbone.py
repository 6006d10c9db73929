"""Backbone pretraining on the store domain: composites carry true labels, a run learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from model import LongVMNet
from model.data.handled import box_cells
from model.errors import CheckpointError, ConfigError
from model.synth.reader import read_dataset
from model.train.composites import composite, cutout
from model.train.pretrain_backbone import (
    HEADS_FILE,
    NONE,
    PretrainConfig,
    load_frames,
    main,
    model_config,
    pretrain_backbone,
    read_pretrain_config,
    store_catalogs,
    with_sampled_stores,
)
from model.train.sampled_frames import sampled_stores


def _product_image() -> np.ndarray:
    image = np.full((64, 64, 3), 230, dtype=np.uint8)  # plain catalog background
    image[10:50, 20:40] = (200, 30, 30)  # the product
    return image


def _red_box(image: np.ndarray, threshold: int) -> tuple[float, ...]:
    """Box of the pixels redder than ``threshold`` on a black background."""
    ys, xs = np.nonzero(image[..., 0] > threshold)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    size = image.shape[0]
    return ((x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size)


def test_cutout_keeps_the_product_and_drops_the_plain_background() -> None:
    rgba = cutout(_product_image())
    assert rgba.shape == (40, 20, 4)
    assert (rgba[..., 3] == 255).all() and (rgba[..., :3] == (200, 30, 30)).all()


def test_composite_labels_the_cells_the_product_covers() -> None:
    rng = np.random.default_rng(0)
    background = np.zeros((128, 128, 3), dtype=np.uint8)
    pasted = 0
    for _ in range(40):
        image, cells = composite(background, _product_image(), rng, (4, 4))
        assert image.shape == background.shape
        if cells is None:  # the catalog image itself: whole frame, cells unlabelled
            continue
        pasted += 1
        # the labels follow the box of the product's (at least a quarter opaque) pixels
        inner, outer = (set(box_cells(_red_box(image, t), (4, 4), 0.25)) for t in (60, 0))
        assert inner <= set(np.flatnonzero(cells).tolist()) <= outer
    assert pasted > 20


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ),
    ],
)
def test_a_short_pretraining_run_changes_the_backbone_and_saves_a_checkpoint(
    tmp_path: Path, make_small_dataset, device: str
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.5, 0.5, 0.0))
    records: list[dict] = []
    config = PretrainConfig(epochs=2, batch_size=8, composites=8, seed=0)
    out = pretrain_backbone(data, tmp_path / "backbone", config, log=records.append, device=device)
    assert [r["epoch"] for r in records] == [1, 2]
    assert {r["device"] for r in records} == {str(torch.device(device))}
    losses = [r["train_loss"] for r in records]
    assert all(np.isfinite(v) for loss in losses for v in loss.values())
    assert set(records[-1]["val_accuracy"]) == {
        "product",
        "product_handled",
        "activity",
        "handled_f1",
    }

    trained = LongVMNet.load(out)
    torch.manual_seed(0)
    fresh = LongVMNet(trained.cfg)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(trained.backbone.parameters(), fresh.backbone.parameters(), strict=True)
    ]
    assert any(changed)
    assert not any(p.requires_grad for p in trained.backbone.parameters())  # frozen again
    assert (out / "pretrain_config.json").exists()


def test_a_run_stopped_and_resumed_ends_as_one_uninterrupted_run(
    tmp_path: Path, make_small_dataset
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.5, 0.5, 0.0))
    config = PretrainConfig(epochs=2, batch_size=8, composites=8, seed=0)
    whole: list[dict] = []
    pretrain_backbone(data, tmp_path / "whole", config, log=whole.append, device="cpu")
    parts: list[dict] = []
    out = tmp_path / "parts"
    pretrain_backbone(data, out, config, log=parts.append, device="cpu", stop_after=1)
    assert [r["epoch"] for r in parts] == [1]
    assert LongVMNet.load(out).cfg == LongVMNet.load(tmp_path / "whole").cfg  # usable already
    assert read_pretrain_config(out) == config
    pretrain_backbone(data, out, config, log=parts.append, device="cpu", resume=True)
    assert [r["epoch"] for r in parts] == [1, 2]
    assert parts[1]["train_loss"] == whole[1]["train_loss"]
    assert parts[1]["val_accuracy"] == whole[1]["val_accuracy"]
    resumed, uninterrupted = LongVMNet.load(out), LongVMNet.load(tmp_path / "whole")
    for (name, a), (_, b) in zip(
        resumed.state_dict().items(), uninterrupted.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resuming_with_other_settings_or_no_run_is_refused(
    tmp_path: Path, make_small_dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.5, 0.5, 0.0))
    config = PretrainConfig(epochs=2, batch_size=8, composites=8, seed=0)
    pretrain_backbone(data, tmp_path / "run", config, device="cpu", stop_after=1)
    other = PretrainConfig(epochs=3, batch_size=8, composites=8, seed=0)
    with pytest.raises(CheckpointError, match="other settings"):
        pretrain_backbone(data, tmp_path / "run", other, device="cpu", resume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(data), "--out", str(tmp_path / "empty"), "--resume"])
    assert exit_info.value.code == 2
    assert "holds no training state to resume from" in capsys.readouterr().err


def test_a_larger_input_keeps_the_presets_stride_and_a_backbone_builds_on_it() -> None:
    cfg = model_config(PretrainConfig(preset="tiny", image_size=192))
    assert (cfg.image_size, cfg.grid, cfg.tokens_per_frame) == (192, (6, 6), 36)
    frames = torch.zeros(2, 144, 192, 3, dtype=torch.uint8)  # a synth frame's shape
    assert LongVMNet(cfg).backbone(frames).shape == (2, 36, cfg.backbone_channels)
    assert model_config(PretrainConfig(preset="tiny")) == model_config(
        PretrainConfig(preset="tiny", image_size=128)
    )
    with pytest.raises(ConfigError, match="stride of 32 pixels"):
        model_config(PretrainConfig(preset="tiny", image_size=200))


def test_the_command_says_in_a_sentence_that_a_size_is_off_the_stride(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--image-size", "200"])
    assert exit_info.value.code == 2
    assert "not a multiple of the tiny backbone's stride of 32 pixels" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_run_started_from_another_goes_on_from_its_backbone_and_heads(
    tmp_path: Path, make_small_dataset
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.5, 0.5, 0.0))
    first = pretrain_backbone(
        data, tmp_path / "first", PretrainConfig(epochs=1, batch_size=8, composites=8, seed=0),
        device="cpu",
    )  # fmt: skip
    # a learning rate too small to move a weight measurably (a bias at exactly 0 moves by
    # ~1e-20): what the run saves is what it read
    still = PretrainConfig(epochs=1, batch_size=8, composites=8, seed=1, lr=1e-20)
    records: list[dict] = []
    second = pretrain_backbone(
        data, tmp_path / "second", still, init=first, log=records.append, device="cpu"
    )
    assert records[0]["epoch"] == 1 and read_pretrain_config(second) == still
    started, went_on = LongVMNet.load(first), LongVMNet.load(second)
    for (name, a), (_, b) in zip(
        started.named_parameters(), went_on.named_parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)
    heads = [safetensors.torch.load_file(str(d / HEADS_FILE)) for d in (first, second)]
    for key, value in heads[0].items():
        torch.testing.assert_close(value, heads[1][key], rtol=0, atol=1e-12, msg=key)
    torch.manual_seed(0)
    fresh = LongVMNet(started.cfg)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(started.backbone.parameters(), fresh.backbone.parameters(), strict=True)
    )  # so the equality above is the start's weights, not a fresh net's


def test_a_start_that_is_no_pretraining_run_or_of_another_size_is_refused(
    tmp_path: Path, make_small_dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.5, 0.5, 0.0))
    config = PretrainConfig(epochs=1, batch_size=8, composites=8, seed=0)
    run = pretrain_backbone(data, tmp_path / "run", config, device="cpu")
    with pytest.raises(CheckpointError, match="another input size"):
        pretrain_backbone(
            data, tmp_path / "larger", PretrainConfig(epochs=1, image_size=192), init=run
        )
    LongVMNet(model_config(config)).save(tmp_path / "plain")  # a checkpoint, no heads
    with pytest.raises(CheckpointError, match="holds no pretraining run"):
        pretrain_backbone(data, tmp_path / "other", config, init=tmp_path / "plain")
    with pytest.raises(ConfigError, match="leave out init"):
        pretrain_backbone(data, run, config, resume=True, init=run)
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["--data", str(data), "--out", str(tmp_path / "cli"), "--init", str(tmp_path / "plain")]
        )
    assert exit_info.value.code == 2
    assert "holds no pretraining run" in capsys.readouterr().err


def test_prototype_views_train_on_changing_pictures_and_are_kept_with_the_run(
    tmp_path: Path, make_small_dataset
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.5, 0.5, 0.0))
    plain = PretrainConfig(epochs=1, batch_size=8, composites=8, seed=0)
    viewed = PretrainConfig(epochs=1, batch_size=8, composites=8, seed=0, prototype_views=True)
    runs = {}
    for name, config in (("plain", plain), ("viewed", viewed)):
        records: list[dict] = []
        out = pretrain_backbone(data, tmp_path / name, config, log=records.append, device="cpu")
        runs[name] = records[0]["train_loss"]
        assert read_pretrain_config(out) == config
    assert all(np.isfinite(v) for v in runs["viewed"].values())
    # the same seed and data: only the prototypes differ, so the match loss does
    assert runs["viewed"]["product"] != runs["plain"]["product"]


def test_sampled_stores_join_the_training_frames_with_products_of_their_own(
    small_dataset: Path,
) -> None:
    dataset = read_dataset(small_dataset)
    config = PretrainConfig(epochs=1)
    cfg = model_config(config)
    catalogs = store_catalogs(dataset)
    frames = load_frames(dataset, "train", cfg, catalogs)
    pictures = np.zeros((len(catalogs.skus), cfg.image_size, cfg.image_size, 3), np.uint8)
    sampled = sampled_stores(3, 2, 5, fps=1, size=cfg.image_size)
    merged, merged_catalogs, merged_pictures = with_sampled_stores(
        frames, catalogs, pictures, sampled, cfg, list(dataset.activities)
    )
    assert len(merged.frames) == len(frames.frames) + 10
    assert merged_catalogs.skus[: len(catalogs.skus)] == catalogs.skus
    assert len(merged_catalogs.skus) == len(catalogs.skus) + 48
    assert len(merged_pictures) == len(merged_catalogs.skus)
    for k, store in enumerate(sampled):
        row = len(catalogs.sold) + k
        mine = merged.store == row
        assert mine.sum() == 5
        assert np.array_equal(merged_pictures[merged_catalogs.sold[row]], store.pictures)
        handled = merged.sku[mine][merged.sku[mine] != NONE]
        assert set(handled) <= set(merged_catalogs.sold[row])  # only the store's own products
        for t, sku in enumerate(merged.sku[mine]):  # each label is the annotation's
            spans = [s for s in store.annotation.spans if s.start - 1e-6 <= t < s.end - 1e-6]
            if sku == NONE:
                assert not spans
            else:
                assert merged_catalogs.skus[sku] == f"sampled:{spans[-1].sku}"
    assert np.array_equal(merged.frames[: len(frames.frames)], frames.frames)


def test_a_run_on_sampled_stores_alone_trains_and_keeps_its_settings(
    tmp_path: Path, make_small_dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_small_dataset(tmp_path / "data", split=(0.0, 1.0, 0.0))  # no training videos
    config = PretrainConfig(
        epochs=1, batch_size=8, composites=4, seed=0, sampled_stores=2, sampled_seconds=30
    )
    records: list[dict] = []
    out = pretrain_backbone(data, tmp_path / "bb", config, log=records.append, workers=2)
    assert np.isfinite(records[0]["train_loss"]["product"])
    assert records[0]["val_accuracy"]["product_handled"] is not None
    assert read_pretrain_config(out) == config
    with pytest.raises(ConfigError, match="no training videos"):
        pretrain_backbone(data, tmp_path / "none", PretrainConfig(epochs=1))
    with pytest.raises(SystemExit) as exit_info:  # the command says so in a sentence
        main(["--data", str(data), "--out", str(tmp_path / "none"), "--epochs", "1"])
    assert exit_info.value.code == 2
    assert "no training videos and no sampled stores" in capsys.readouterr().err
