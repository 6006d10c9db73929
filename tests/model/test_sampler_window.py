"""``sampler_window``: the sampler scores its candidates with attention in blocks, each block
reading itself and its two neighbours, so a write costs time linear in m."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from model import LongVMNet, Memory, ModelConfig
from model.errors import ConfigError
from model.layers import Attention
from model.resize import resize_checkpoint
from model.sampler import NeuralSampler


def _dense_block_mask(key_mask: torch.Tensor, window: int) -> torch.Tensor:
    """The rule ``in_blocks`` states, written out as a dense ``(B, n, n)`` mask."""
    b, n = key_mask.shape
    width = 3 * window
    mask = torch.zeros(b, n, n, dtype=torch.bool)
    for session in range(b):
        real = int(key_mask[session].sum())
        for row in range(n):
            first = min(max(row // window * window - window, 0), max(real - width, 0))
            keys = key_mask[session, first : first + width]
            if not keys.any():  # a window of padding only reads all of it
                keys = torch.ones_like(keys)
            mask[session, row, first : first + width] = keys
    return mask


@pytest.mark.parametrize("n, window", [(50, 8), (48, 8), (49, 16), (100, 7)])
@pytest.mark.parametrize("real", [(50, 30), (50, 0), (20, 9)])
def test_attention_in_blocks_equals_the_dense_mask_of_its_rule(
    n: int, window: int, real: tuple[int, int]
) -> None:
    torch.manual_seed(0)
    attention = Attention(16, 4).eval()
    x = torch.randn(2, n, 16)
    key_mask = torch.arange(n)[None] < torch.tensor(real)[:, None]  # real tokens first
    blocked = attention.in_blocks(x, key_mask, window)
    dense = attention(x, x, _dense_block_mask(key_mask, window))
    assert blocked.shape == (2, n, 16)
    assert torch.isfinite(blocked).all()
    assert torch.allclose(blocked, dense, atol=1e-5)


@pytest.mark.parametrize("n, window", [(64, 8), (4352, 64), (96, 16)])
def test_a_full_session_reads_its_blocks_keys_in_place_with_the_same_bits(
    n: int, window: int
) -> None:
    """One session of real tokens filling its blocks (a full memory) takes the path that
    reads keys in place (``Attention._full_blocks``); with a second session beside it the
    keys are copied per block. Session 0 comes out bit for bit the same either way, and
    as the rule's dense mask says."""
    torch.manual_seed(3)
    attention = Attention(64, 4).eval()
    x = torch.randn(2, n, 64)
    every = torch.ones(2, n, dtype=torch.bool)
    with torch.no_grad():
        alone = attention.in_blocks(x[:1], every[:1], window)  # the in-place path
        copied = attention.in_blocks(x, every, window)[:1]  # the copying path
        dense = attention(x[:1], x[:1], _dense_block_mask(every[:1], window))
    assert torch.equal(alone, copied)
    assert torch.allclose(alone, dense, atol=1e-5)


def test_attention_in_blocks_reads_only_near_tokens() -> None:
    """Changing a token far from row 0 leaves row 0 as it was; a near one changes it."""
    torch.manual_seed(1)
    attention = Attention(16, 4).eval()
    x = torch.randn(1, 64, 16)
    keys = torch.ones(1, 64, dtype=torch.bool)
    base = attention.in_blocks(x, keys, 8)
    far, near = x.clone(), x.clone()
    far[0, 40] += 5.0  # block 5: row 0 (block 0) reads tokens 0-23 only
    near[0, 20] += 5.0
    assert torch.equal(attention.in_blocks(far, keys, 8)[0, 0], base[0, 0])
    assert not torch.allclose(attention.in_blocks(near, keys, 8)[0, 0], base[0, 0])


def test_a_short_sequence_is_read_whole() -> None:
    torch.manual_seed(2)
    attention = Attention(16, 4).eval()
    x = torch.randn(3, 24, 16)
    keys = torch.rand(3, 24) > 0.2
    assert torch.equal(attention.in_blocks(x, keys, 8), attention(x, x, keys))


def _candidates(cfg: ModelConfig, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(2, n, cfg.backbone_channels, generator=g)
    time_index = torch.arange(n)[None].expand(2, -1) // cfg.tokens_per_frame
    spatial_index = torch.arange(n)[None].expand(2, -1) % cfg.tokens_per_frame
    valid = torch.ones(2, n, dtype=torch.bool)
    valid[1, 10:70] = False  # session 1: a memory not yet full, empty slots in the middle
    return tokens, time_index, spatial_index, valid


def test_the_sampler_with_a_window_as_wide_as_its_candidates_scores_as_without() -> None:
    cfg = ModelConfig.preset("tiny")
    torch.manual_seed(3)
    sampler = NeuralSampler(cfg).eval()
    args = _candidates(cfg, 120, seed=4)
    whole = sampler(*args)
    sampler.window = 40  # 3 blocks of 40: every candidate still reads every other
    blocked = sampler(*args)
    valid = args[3]
    assert torch.allclose(blocked[valid], whole[valid], atol=1e-5)


def test_the_sampler_in_blocks_reads_valid_candidates_in_time_order() -> None:
    """Empty slots do not break a block: session 1's candidates score as if its empty
    slots were not there at all, and the last blocks read whole windows of real ones."""
    cfg = ModelConfig.preset("tiny")
    torch.manual_seed(5)
    sampler = NeuralSampler(cfg).eval()
    sampler.window = 16
    tokens, time_index, spatial_index, valid = _candidates(cfg, 200, seed=6)
    scores = sampler(tokens, time_index, spatial_index, valid)
    keep = valid[1]
    alone = sampler(
        tokens[1:, keep], time_index[1:, keep], spatial_index[1:, keep], valid[1:, keep]
    )
    assert torch.isfinite(scores).all()
    assert torch.allclose(scores[1, keep], alone[0], atol=1e-5)


def test_a_young_memorys_empty_blocks_are_not_computed() -> None:
    """Only the blocks up to the last real candidate are computed: the real ones score the
    same bits as when every block was; the blocks left out come out as zeros."""
    cfg = ModelConfig.preset("tiny")
    torch.manual_seed(5)
    sampler = NeuralSampler(cfg).eval()
    sampler.window = 16
    n, real = 600, 150  # 10 blocks of real candidates' worth, 38 empty
    x = torch.randn(1, n, cfg.d_model)
    attend = torch.zeros(1, n, dtype=torch.bool)
    attend[0, torch.randperm(n)[:real]] = True
    first = torch.sort((~attend).to(torch.uint8), dim=-1, stable=True).indices
    every_block = sampler.encoder(x[0, first[0]][None], attend[:, first[0]], window=16)
    with torch.no_grad():
        ours = sampler._in_blocks(x, attend)
        theirs = torch.empty_like(every_block)
        theirs[0, first[0]] = every_block[0]
    assert torch.equal(ours[attend], theirs[attend])
    left_out = (ours[0] == 0).all(dim=-1)
    assert int(left_out.sum()) == n - 160 and not left_out[attend[0]].any()  # 10 blocks kept


@pytest.fixture(scope="module")
def windowed_net() -> LongVMNet:
    torch.manual_seed(7)
    return LongVMNet(ModelConfig.preset("tiny", memory_size=96, sampler_window=32)).eval()


def _stream(net: LongVMNet, sessions: int, clips: int, seed: int) -> Memory:
    cfg = net.cfg
    g = torch.Generator().manual_seed(seed)
    shape = (sessions, cfg.clip_frames, cfg.tokens_per_frame, cfg.backbone_channels)
    memory = None
    for _ in range(clips):
        memory = net.write_tokens(memory, torch.randn(shape, generator=g))
    assert memory is not None
    return memory


def test_windowed_writes_are_deterministic_and_batch_invariant(windowed_net: LongVMNet) -> None:
    together = _stream(windowed_net, 3, 4, seed=8)
    again = _stream(windowed_net, 3, 4, seed=8)
    assert torch.equal(together.tokens, again.tokens)
    assert torch.equal(together.time_index, again.time_index)
    cfg = windowed_net.cfg
    g = torch.Generator().manual_seed(8)
    shape = (3, cfg.clip_frames, cfg.tokens_per_frame, cfg.backbone_channels)
    alone = None
    for _ in range(4):
        alone = windowed_net.write_tokens(alone, torch.randn(shape, generator=g)[1:2])
    assert alone is not None
    assert torch.equal(alone.tokens[0], together.tokens[1])
    assert torch.equal(alone.time_index[0], together.time_index[1])


def test_the_window_is_a_setting_saved_with_the_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(9)
    net = LongVMNet(ModelConfig.preset("tiny", memory_size=96)).eval()
    net.save(tmp_path / "whole")
    out = resize_checkpoint(tmp_path / "whole", tmp_path / "blocks", sampler_window=32)
    loaded = LongVMNet.load(out).eval()
    assert loaded.cfg.sampler_window == 32 and loaded.sampler.window == 32
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), net.state_dict().values(), strict=True)
    )
    # the setting changes what is kept once a write has more than 3 blocks of candidates
    assert not torch.equal(
        _stream(loaded, 1, 4, seed=10).tokens, _stream(net, 1, 4, seed=10).tokens
    )
    net.set_sampler_window(32)
    assert torch.equal(_stream(loaded, 1, 4, seed=10).tokens, _stream(net, 1, 4, seed=10).tokens)


@pytest.mark.parametrize("window", [0, -2])
def test_a_window_must_be_positive_or_off(window: int) -> None:
    with pytest.raises(ConfigError, match="sampler_window"):
        ModelConfig.preset("tiny", sampler_window=window)


def test_the_window_needs_the_attention_mixer() -> None:
    with pytest.raises(ConfigError, match="attention mixer"):
        dataclasses.replace(ModelConfig.preset("tiny", mixer="mamba"), sampler_window=64)
