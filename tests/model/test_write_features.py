"""A memory carries each slot's sampler input from one write to the next
(``Memory.features``): the next write projects only its clip's tokens, and writes the
memories it wrote when it projected every slot again, bit for bit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from model import LongVMNet, Memory, ModelConfig


@pytest.fixture(scope="module")
def net() -> LongVMNet:
    torch.manual_seed(3)
    cfg = ModelConfig.preset("tiny", memory_size=96, sampler_window=16)
    return LongVMNet(cfg, pretrained_backbone=False).eval()


def _clips(net: LongVMNet, count: int, sessions: int = 2) -> list[torch.Tensor]:
    cfg = net.cfg
    g = torch.Generator().manual_seed(1)
    shape = (sessions, cfg.clip_frames, cfg.tokens_per_frame, cfg.backbone_channels)
    return [torch.randn(shape, generator=g) for _ in range(count)]


def _forgetting(memory: Memory) -> Memory:
    return dataclasses.replace(memory, features=None)


def test_carried_inputs_write_the_memories_a_fresh_projection_writes(net: LongVMNet) -> None:
    carried = fresh = Memory.empty(net.cfg, 2)
    masks = [None] * 9 + [torch.tensor([[True] * 5 + [False] * 11, [True] * 16])]
    for clip, mask in zip(_clips(net, 10), masks, strict=True):
        carried = net.write_tokens(carried, clip, mask)
        fresh = net.write_tokens(_forgetting(fresh), clip, mask)
        assert carried.features is not None
        assert carried.equal(fresh)  # the memory is full after 3 clips: 7 writes of a full one
    recomputed = net.with_write_features(_forgetting(carried))
    assert recomputed.features is not None and carried.features is not None
    assert torch.equal(recomputed.features, carried.features)  # as computed at each write


def test_each_slots_input_is_its_own_whatever_the_rows_beside_it(net: LongVMNet) -> None:
    memory = Memory.empty(net.cfg, 1)
    for clip in _clips(net, 6, sessions=1):
        memory = net.write_tokens(memory, clip)
    sampler, rows = net.sampler, net.cfg.clip_tokens
    chunked = sampler.inputs_in_chunks(memory.tokens, memory.time_index, memory.spatial_index, rows)
    reversed_order = torch.arange(memory.size - 1, -1, -1)
    flipped = sampler.inputs_in_chunks(
        memory.tokens[:, reversed_order],
        memory.time_index[:, reversed_order],
        memory.spatial_index[:, reversed_order],
        rows,
    )
    assert torch.equal(flipped[:, reversed_order], chunked)
    direct = sampler.inputs(memory.tokens, memory.time_index, memory.spatial_index)
    assert torch.allclose(direct, chunked, atol=1e-6)


def test_sessions_keep_their_inputs_through_select_cat_and_to(net: LongVMNet) -> None:
    memory = Memory.empty(net.cfg, 3)
    for clip in _clips(net, 2, sessions=3):
        memory = net.write_tokens(memory, clip)
    assert memory.features is not None
    picked = memory.select([2, 0])
    assert picked.features is not None and torch.equal(picked.features, memory.features[[2, 0]])
    both = Memory.cat([memory[1], memory[0]])
    assert both.features is not None and torch.equal(both.features, memory.features[[1, 0]])
    assert Memory.cat([memory[1], _forgetting(memory[0])]).features is None
    assert memory.to("cpu").features is not None
    assert memory.padded_to(memory.size + 8).features is None  # slots made anew


def test_other_writers_carry_nothing(net: LongVMNet) -> None:
    random = LongVMNet(dataclasses.replace(net.cfg, writer="random"), pretrained_backbone=False)
    assert random.write_features == 0
    memory = random.write_tokens(Memory.empty(random.cfg, 2), _clips(random, 1)[0])
    assert memory.features is None
    assert random.with_write_features(memory) is memory
    assert net.write_features == net.cfg.d_model
