"""The backbone batched across sessions: a session's tokens are the same whoever shares its
calls and wherever its frames fall in them; the last call is padded to the fixed shape."""

from __future__ import annotations

import pytest
import torch

from model import LongVMNet, ModelConfig
from model.backbone import Backbone
from model.backbone_run import PER_CLIP, BackboneRun
from model.errors import ConfigError


def _clips(make_frames) -> list[torch.Tensor]:
    """Five sessions' clips: lengths 16, 16, 5, 16, 9; two frame sizes (cameras differ)."""
    sizes = [(16, 48, 64), (16, 48, 64), (5, 48, 64), (16, 72, 96), (9, 72, 96)]
    return [
        torch.from_numpy(make_frames(1, t, seed=10 + i, h=h, w=w)[0])
        for i, (t, h, w) in enumerate(sizes)
    ]


@pytest.mark.parametrize("autocast", ["off", "bf16"])
@pytest.mark.parametrize("batch_frames", [16, 24, 64])
def test_a_sessions_tokens_do_not_depend_on_who_shares_its_calls(
    tiny_net: LongVMNet, make_frames, batch_frames: int, autocast: str
) -> None:
    run = BackboneRun(batch_frames=batch_frames, autocast=autocast)
    clips = _clips(make_frames)
    together = tiny_net.encode_clips(clips, run)
    # other neighbours, other order: every clip's frames land elsewhere in the calls (with
    # 24 frames per call some clips straddle two calls, one of them padded)
    reordered = tiny_net.encode_clips([clips[4], clips[2], clips[0], clips[3], clips[1]], run)
    for i, j in enumerate([4, 2, 0, 3, 1]):
        assert torch.equal(reordered[i], together[j]), f"clip {j} moved and changed"
    for i, clip in enumerate(clips):
        alone = tiny_net.encode_clips([clip], run)[0]
        assert alone.shape == (len(clip), tiny_net.cfg.tokens_per_frame, 576)
        assert alone.dtype == torch.float32
        assert torch.equal(alone, together[i]), f"clip {i} alone differs from in company"


def test_full_clips_in_calls_of_one_clip_equal_the_per_clip_path(
    tiny_net: LongVMNet, make_frames
) -> None:
    frames = torch.from_numpy(make_frames(3, 16, seed=4))  # (3, 16, H, W, 3)
    per_clip = tiny_net.encode_frames(frames)
    batched = tiny_net.encode_frames(frames, BackboneRun(batch_frames=16))
    assert torch.equal(per_clip, batched)  # the same shape per call: the same rounding


def test_every_call_has_the_fixed_shape(tiny_net: LongVMNet, make_frames) -> None:
    shapes: list[tuple[int, ...]] = []
    tokens = tiny_net.backbone.tokens

    def recording(x: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(x.shape))
        return tokens(x)

    tiny_net.backbone.tokens = recording  # type: ignore[method-assign]  # a test spy
    try:
        out = tiny_net.encode_clips(_clips(make_frames), BackboneRun(batch_frames=24))
    finally:
        del tiny_net.backbone.tokens
    size = tiny_net.cfg.image_size
    assert shapes == [(24, 3, size, size)] * 3  # 62 frames: 24 + 24 + 14 padded to 24
    assert [len(t) for t in out] == [16, 16, 5, 16, 9]


def test_bf16_tokens_stay_near_float32(tiny_net: LongVMNet, make_frames) -> None:
    clips = _clips(make_frames)
    exact = torch.cat(tiny_net.encode_clips(clips, BackboneRun(batch_frames=16)))
    low = torch.cat(tiny_net.encode_clips(clips, BackboneRun(batch_frames=16, autocast="bf16")))
    drift = ((low - exact).norm() / exact.norm()).item()
    assert 0 < drift < 0.05, drift  # bf16 keeps 8 bits of mantissa: about 1 % per layer


def test_per_clip_is_the_default_and_bad_runs_are_refused() -> None:
    assert PER_CLIP.batch_frames is None and PER_CLIP.autocast == "off"
    with pytest.raises(ConfigError, match="batch_frames"):
        BackboneRun(batch_frames=0)
    with pytest.raises(ConfigError, match="autocast must be one of off, bf16, fp16"):
        BackboneRun(autocast="int8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_bf16_calls_of_many_sessions_are_batch_invariant(tiny_cfg, make_frames) -> None:
    torch.manual_seed(0)
    net = LongVMNet(tiny_cfg).eval().cuda()
    run = BackboneRun(batch_frames=8 * tiny_cfg.clip_frames, autocast="bf16")
    clips = _clips(make_frames) * 4  # 20 sessions: more than one call
    together = net.encode_clips(clips, run)
    for i in (0, 2, 4):
        assert torch.equal(net.encode_clips([clips[i]], run)[0], together[i])


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_the_larger_presets_backbones_are_batch_invariant_too(preset: str, make_frames) -> None:
    """A ResNet (small) and a Swin V2 transformer (paper), with random weights: the
    invariance is a property of the calls' fixed shape and layout, not of one network."""
    torch.manual_seed(0)
    backbone = Backbone(ModelConfig.preset(preset), load_weights=False)
    clips = [
        torch.from_numpy(make_frames(1, t, seed=20 + t, h=h, w=w)[0])
        for t, h, w in [(3, 48, 64), (5, 90, 120), (2, 48, 64)]
    ]
    run = BackboneRun(batch_frames=4)
    together = run.encode(backbone, clips)
    for i, clip in enumerate(clips):
        assert torch.equal(run.encode(backbone, [clip])[0], together[i]), f"clip {i}"
