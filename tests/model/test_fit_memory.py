"""``LongVMNet.fit_memory``: a session's memory written under a checkpoint of another
memory size, made to this model's m (an upgrade or a rollback while sessions are live)."""

from __future__ import annotations

import torch

from model import LongVMNet, Memory, ModelConfig


def _written(m: int, sessions: int, make_tokens) -> tuple[LongVMNet, Memory]:
    """A random tiny model of memory size ``m`` and the memory of two clips it wrote."""
    torch.manual_seed(m)
    net = LongVMNet(ModelConfig.preset("tiny", memory_size=m)).eval()
    memory = net.write_tokens(None, make_tokens(sessions, seed=1))
    return net, net.write_tokens(memory, make_tokens(sessions, seed=2))


def test_a_smaller_memory_fits_by_empty_slots_and_keeps_every_token(make_tokens) -> None:
    small, memory = _written(32, 2, make_tokens)
    small.resize_memory(96)
    fitted = small.fit_memory(memory)
    assert fitted.size == 96 and fitted.in_time_order()
    assert torch.equal(fitted.tokens[:, :32], memory.tokens)
    assert not fitted.valid[:, 32:].any() and torch.equal(fitted.frames_seen, memory.frames_seen)
    assert small.write_tokens(fitted, make_tokens(2, seed=3)).size == 96  # writes go on


def test_a_larger_memory_is_sampled_down_to_tokens_it_held(make_tokens) -> None:
    net, memory = _written(96, 1, make_tokens)
    net.resize_memory(40)
    fitted = net.fit_memory(memory)
    assert fitted.size == 40 and bool(fitted.valid.all()) and fitted.in_time_order()
    assert torch.equal(fitted.frames_seen, memory.frames_seen)  # no frame was written
    held = {tuple(t.tolist()) for t in memory.tokens[0][memory.valid[0]]}
    assert all(tuple(t.tolist()) in held for t in fitted.tokens[0])
    assert fitted.equal(net.fit_memory(memory))  # deterministic
    assert net.fit_memory(fitted) is fitted  # already the right size
