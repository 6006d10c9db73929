"""The token cache: computed once like the live path, reused, invalidated by a change."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from model import LongVMNet, ModelConfig
from model.data import TokenCache
from model.synth import decode_video


def test_tokens_are_the_live_paths_and_are_read_back_the_second_time(
    small_dataset: Path, small_cfg: ModelConfig, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    net = LongVMNet(small_cfg)
    video = small_dataset / "videos" / "train-0000.mp4"
    cache = TokenCache(tmp_path, small_cfg, net.backbone)
    first = cache.tokens(video)
    assert (cache.hits, cache.misses) == (0, 1)
    frames = decode_video(video, small_cfg.fps)
    t = small_cfg.clip_frames
    live = torch.cat(
        [net.encode_frames(frames[None, i : i + t])[0] for i in range(0, len(frames), t)]
    )
    assert first.shape == (len(frames), small_cfg.tokens_per_frame, small_cfg.backbone_channels)
    assert torch.equal(first, live)  # clip by clip, as ``net.write`` encodes them

    again = TokenCache(tmp_path, small_cfg, net.backbone).tokens(video)
    assert torch.equal(again, first)
    assert cache.path(video).is_file() and (cache.directory / "backbone.json").is_file()


def test_a_changed_backbone_or_video_misses_the_cache(
    small_dataset: Path, small_cfg: ModelConfig, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    net = LongVMNet(small_cfg)
    video = tmp_path / "video.mp4"
    shutil.copy(small_dataset / "videos" / "train-0000.mp4", video)
    cache = TokenCache(tmp_path / "cache", small_cfg, net.backbone)
    cache.tokens(video)

    with torch.no_grad():  # fine-tuned backbone: new weights, new tokens
        next(net.backbone.model.parameters()).mul_(1.5)
    changed = TokenCache(tmp_path / "cache", small_cfg, net.backbone)
    assert changed.backbone_id != cache.backbone_id
    changed.tokens(video)
    assert changed.misses == 1

    other = small_dataset / "videos" / "test-0000.mp4"
    shutil.copy(other, video)  # same name, other content
    assert cache.path(video) != cache.path(small_dataset / "videos" / "train-0000.mp4")
    recomputed = cache.tokens(video)
    assert cache.misses == 2
    assert recomputed.shape[0] == len(decode_video(other, small_cfg.fps))

    slower = ModelConfig.preset("tiny", fps=0.5)  # another memory rate: other tokens
    assert TokenCache(tmp_path / "cache", slower, net.backbone).backbone_id != cache.backbone_id
    assert np.load(cache.path(video)).dtype == np.float32
