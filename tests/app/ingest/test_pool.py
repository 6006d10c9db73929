"""The device pool grows by doubling up to its capacity and keeps every memory as it was."""

import pytest
import torch

from app.ingest.pool import DevicePool, PoolFullError
from model import Memory, ModelConfig

CFG = ModelConfig.preset("tiny")


def one_memory(seed: int) -> Memory:
    g = torch.Generator().manual_seed(seed)
    m = Memory.empty(CFG, 1)
    m.tokens.copy_(torch.randn(m.tokens.shape, generator=g))
    m.valid.fill_(True)
    m.frames_seen.fill_(seed)
    return m


def test_the_block_doubles_and_keeps_what_it_held() -> None:
    pool = DevicePool(CFG, capacity=20, device="cpu", initial_slots=4)
    assert pool.block.batch_size == 4
    for i in range(20):
        assert pool.admit(f"s{i}", one_memory(i), evictable=[]) == []
    assert pool.block.batch_size == 20  # 4 -> 8 -> 16 -> 20, never past the capacity
    for i in range(20):
        assert pool.get([f"s{i}"]).equal(one_memory(i)), i


def test_at_capacity_a_saved_session_makes_room() -> None:
    pool = DevicePool(CFG, capacity=3, device="cpu", initial_slots=2)
    for i in range(3):
        pool.admit(f"s{i}", one_memory(i), evictable=[])
    with pytest.raises(PoolFullError):
        pool.admit("s3", one_memory(3), evictable=[])
    assert pool.admit("s3", one_memory(3), evictable=["s1"]) == ["s1"]
    assert pool.block.batch_size == 3 and pool.get(["s3"]).equal(one_memory(3))


def test_a_pool_that_keeps_sampler_inputs_keeps_each_sessions_through_growth() -> None:
    pool = DevicePool(CFG, capacity=5, device="cpu", initial_slots=1, features=CFG.d_model)
    assert pool.keeps_features
    held = {}
    for i in range(5):
        memory = one_memory(i)
        memory.features = torch.full((1, CFG.memory_size, CFG.d_model), float(i))
        pool.admit(f"s{i}", memory, evictable=[])
        held[f"s{i}"] = memory
    for sid, memory in held.items():
        got = pool.get([sid])
        assert got.equal(memory) and got.features is not None
        assert torch.equal(got.features, memory.features)
    assert pool.nbytes == 5 * (Memory.nbytes_per_session(CFG) + CFG.memory_size * CFG.d_model * 4)
    with pytest.raises(ValueError, match="keeps sampler features"):
        pool.admit("bare", one_memory(9), evictable=["s0"])  # a slot's inputs would be stale
