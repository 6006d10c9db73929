"""Handled-product cells per memory frame: what the annotated boxes cover, none elsewhere."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from model import ModelConfig
from model.data import box_cells, handled_map, load_split
from model.data.token_cache import TokenCache
from model.network import LongVMNet
from model.synth import read_dataset


def test_box_cells_of_a_centred_box_and_a_corner_box() -> None:
    # A box over the middle 2 x 2 of a 4 x 4 grid covers exactly those four cells.
    assert box_cells((0.5, 0.5, 0.5, 0.5), (4, 4), 0.25) == [5, 6, 9, 10]
    # A sliver in the top-left corner still names the cell of its centre.
    assert box_cells((0.05, 0.05, 0.02, 0.02), (4, 4), 0.25) == [0]


def test_each_frame_gets_the_cells_of_its_nearest_box(small_dataset: Path) -> None:
    cfg = ModelConfig.preset("tiny")
    video = next(v for v in read_dataset(small_dataset).videos.values() if v.boxes)
    steps = int(video.duration * cfg.fps)
    cells = handled_map(video, steps, cfg)
    assert cells is not None and cells.shape == (steps, cfg.tokens_per_frame)
    for k in range(steps):
        near = [b for b in video.boxes if abs(b.t - k / cfg.fps) <= 0.5 / video.box_fps]
        if not near:
            assert not cells[k].any()
            continue
        box = min(near, key=lambda b: abs(b.t - k / cfg.fps))
        assert sorted(cells[k].nonzero()[0].tolist()) == box_cells(box.box, cfg.grid, 0.25)
    assert cells.any() and not cells.all()


def test_a_video_without_boxes_is_unknown_not_empty(small_dataset: Path) -> None:
    video = next(iter(read_dataset(small_dataset).videos.values()))
    assert handled_map(dataclasses.replace(video, boxes=()), 10, ModelConfig.preset("tiny")) is None


def test_load_split_carries_each_videos_handled_cells(small_dataset: Path, tmp_path: Path) -> None:
    cfg = ModelConfig.preset("tiny")
    dataset = read_dataset(small_dataset)
    net = LongVMNet(cfg)
    data = load_split(dataset, "train", cfg, TokenCache(tmp_path, cfg, net.backbone))
    for video_id, tokens in data.tokens.items():
        cells = data.handled[video_id]
        assert cells.shape == tokens.shape[:2] and cells.dtype.is_floating_point is False
        expected = handled_map(dataset.videos[video_id], tokens.shape[0], cfg)
        assert expected is not None and (cells.numpy() == expected).all()
