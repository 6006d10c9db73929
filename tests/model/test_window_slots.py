"""Answers read only the memory slots their window's steps can reach: taking those slots
before the question is fused in gives the answers of the whole memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model import LongVMNet, Memory, ModelConfig
from model.queries import ActivityQuery, ObjectQuery, TimeQuery


def _memory() -> Memory:
    """Two sessions of 8 slots; steps ascend over the valid ones, the rest are empty."""
    steps = torch.tensor([[0, 0, 2, 3, 5, 9, 9, 12], [1, 4, 4, 6, 0, 0, 0, 0]])
    valid = torch.tensor([[True] * 8, [True] * 4 + [False] * 4])
    tokens = torch.arange(2 * 8 * 3, dtype=torch.float32).view(2, 8, 3)
    return Memory(tokens, steps, torch.arange(8).expand(2, -1) % 4, valid, torch.tensor([13, 7]))


@pytest.mark.parametrize(
    ("session", "lowest", "highest", "steps"),
    [(0, 2, 9, [2, 3, 5, 9, 9]), (1, 4, 40, [4, 4, 6]), (0, 10, 11, []), (1, -5, 0, [])],
)
def test_a_row_holds_exactly_the_slots_of_its_steps(
    session: int, lowest: int, highest: int, steps: list[int]
) -> None:
    memory = _memory()
    rows = memory.slots_between(
        torch.tensor([session, 0]), torch.tensor([lowest, 0]), torch.tensor([highest, 12])
    )
    assert rows.batch_size == 2 and rows.size == 8  # padded to the longest: session 0 whole
    assert rows.time_index[0][rows.valid[0]].tolist() == steps
    inside = (memory.time_index[session] >= lowest) & (memory.time_index[session] <= highest)
    expected = memory.tokens[session][inside & memory.valid[session]]
    assert torch.equal(rows.tokens[0][rows.valid[0]], expected)  # the same slots, in order
    assert int(rows.frames_seen[0]) == int(memory.frames_seen[session])
    alone = memory.select(torch.tensor([session]))  # one session (the query worker's memory)
    one = alone.slots_between(
        torch.tensor([0, 0]), torch.tensor([lowest, 0]), torch.tensor([highest, 12])
    )
    assert one.time_index[0][one.valid[0]].tolist() == steps
    assert torch.equal(one.tokens[0][one.valid[0]], expected)
    lone = memory.slots_between(  # one row: a view of its session's run of slots
        torch.tensor([session]), torch.tensor([lowest]), torch.tensor([highest])
    )
    assert lone.time_index[0][lone.valid[0]].tolist() == steps
    assert torch.equal(lone.tokens[0][lone.valid[0]], expected)
    assert lone.batch_size == 1 and lone.size == max(len(steps), 1)
    session_steps = alone.time_index[0][alone.valid[0]]
    assert one.time_index[1][one.valid[1]].tolist() == session_steps[session_steps <= 12].tolist()


def test_a_shuffled_memory_is_not_in_time_order() -> None:
    memory = _memory()
    order = torch.tensor([3, 1, 2, 0, 4, 5, 6, 7])
    shuffled = dataclasses.replace(
        memory, time_index=memory.time_index[:, order], valid=memory.valid[:, order]
    )
    assert not shuffled.in_time_order()
    empty_first = dataclasses.replace(memory, valid=memory.valid.flip(1))
    assert not empty_first.in_time_order()


@pytest.fixture(scope="module")
def net() -> LongVMNet:
    torch.manual_seed(4)
    cfg = ModelConfig.preset("tiny", query_fusion="decoder", decoder_self_radius=3, memory_size=96)
    assert cfg.decoder_time_radius >= 0
    return LongVMNet(cfg, pretrained_backbone=False).eval()


def _whole_memory(
    net: LongVMNet, projected: Memory, index: list[int], batch: object, window_slots: bool
) -> Memory:
    return projected.select(torch.tensor(index))


def test_answers_from_the_window_slots_equal_those_from_the_whole_memory(
    net: LongVMNet, make_frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = net.prepare(net.populate(make_frames(2, 80)))
    image = make_frames(1, 1, seed=3)[0, 0]
    questions = [
        ActivityQuery(0, image, 0, 80), ActivityQuery(1, image, 30, 34),
        ObjectQuery(1, 2, 10, 50), ObjectQuery(0, 1, 70, 71),
        TimeQuery(0, 3, image, 5, 60), TimeQuery(1, 0, image, 40, 44),
    ]  # fmt: skip
    slots: list[int] = []  # what each batch of questions read of the memory
    hook = net.encoder_decoder.register_forward_pre_hook(
        lambda _m, args: slots.append(args[0].size)
    )
    try:
        near = net.answer(memory, questions)
        read_near, slots[:] = sum(slots), []
        monkeypatch.setattr(LongVMNet, "_query_memory", _whole_memory)
        whole = net.answer(memory, questions)
    finally:
        hook.remove()
    assert set(slots) == {net.cfg.memory_size}
    assert read_near < sum(slots)  # fewer slots were read
    for a, b in zip(near, whole, strict=True):
        for field, value in dataclasses.asdict(a).items():
            other = dataclasses.asdict(b)[field]
            if value is None:  # a field only a model pair fills (``naming``)
                assert other is None, field
                continue
            # the same numbers up to float rounding: matrix products over fewer rows may
            # sum in another order (measured: 4e-7 at most on a shipped model's answers)
            assert np.allclose(value, other, rtol=0, atol=1e-5), field


@pytest.mark.parametrize("whole", [False, True])
def test_a_window_after_every_token_of_a_full_memory_reads_only_its_own_tokens(
    net: LongVMNet, make_frames, monkeypatch: pytest.MonkeyPatch, whole: bool
) -> None:
    """Every slot valid, all before the window: the blocks of the window read no memory
    token (they used to index one past the last slot)."""
    cfg = net.cfg
    m = cfg.memory_size
    g = torch.Generator().manual_seed(5)
    memory = Memory(
        torch.randn(1, m, cfg.backbone_channels, generator=g),
        (torch.arange(m) // 2)[None],
        (torch.arange(m) % cfg.tokens_per_frame)[None],
        torch.ones(1, m, dtype=torch.bool),
        torch.tensor([m // 2]),
    )
    if whole:
        monkeypatch.setattr(LongVMNet, "_query_memory", _whole_memory)
    image = make_frames(1, 1, seed=3)[0, 0]
    start = m // 2 + 20  # the last token is at step m / 2 - 1
    (answer,) = net.answer(memory, [ActivityQuery(0, image, start, start + 40)])
    assert np.isfinite(answer.probabilities).all()


def test_rows_read_whole_are_not_taken_again() -> None:
    """A memory cut to the windows is read whole by the decoder: its rows are every row
    in order, and only then is the copy skipped."""
    from model.encoder_decoder import _every_row

    assert _every_row(torch.arange(5).expand(3, -1), 5)
    assert not _every_row(torch.arange(4).expand(3, -1), 5)  # fewer rows
    assert not _every_row(torch.tensor([[0, 1, 2, 3, 4], [0, 1, 3, 2, 4]]), 5)  # one out of order
