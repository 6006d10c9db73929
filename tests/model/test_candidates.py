"""``Candidates``: a write's memory and clip tokens, read where they lie.

An inference write copies the kept tokens straight from the memory and the clip
(``Candidates._take``) instead of joining the two first; the kept positions come in
canonical order without sorting when the candidates are in it already (a full memory and a
whole clip). Both must give exactly what the joined tokens and the sorts give.
"""

from __future__ import annotations

import pytest
import torch

from model import ClipTokens, LongVMNet, Memory
from model.candidates import Candidates


def _joined(cand: Candidates) -> Candidates:
    """The same candidates with their tokens joined into one tensor up front."""
    return Candidates(
        cand.tokens.clone(), cand.time_index, cand.spatial_index, cand.valid, cand.frames_seen
    )


def _canonical(cand: Candidates, chosen: torch.Tensor) -> torch.Tensor:
    """Positions of ``chosen``, valid first, then by (time, spatial), ties by position."""
    out = []
    for b in range(chosen.shape[0]):
        rows = chosen[b].nonzero().flatten().tolist()
        rows.sort(
            key=lambda j: (
                not bool(cand.valid[b, j]),
                int(cand.time_index[b, j]),
                int(cand.spatial_index[b, j]),
                j,
            )
        )
        out.append(rows)
    return torch.tensor(out)


def _written(net: LongVMNet, make_tokens, clips: int, batch: int = 2) -> Memory:
    memory = None
    for i in range(clips):
        memory = net.write_tokens(memory, make_tokens(batch, seed=i))
    assert memory is not None
    return memory


@pytest.mark.parametrize("clips", [1, 3, 17])  # young (empty slots) to full (16 clips)
def test_kept_tokens_read_from_memory_and_clip_equal_the_joined_tokens(
    tiny_net: LongVMNet, make_tokens, clips: int
) -> None:
    memory = _written(tiny_net, make_tokens, clips)
    frames = tiny_net.cfg.clip_frames
    clip = ClipTokens.from_frames(make_tokens(2, seed=99), memory.frames_seen, frames)
    cand = Candidates.of(memory, clip)
    g = torch.Generator().manual_seed(clips)
    chosen = torch.zeros_like(cand.valid)
    for b in range(2):
        chosen[b, torch.randperm(chosen.shape[1], generator=g)[: memory.tokens.shape[1]]] = True
    slots = cand.slots(chosen, memory.tokens.shape[1])
    assert torch.equal(slots, _canonical(cand, chosen))
    ours, reference = cand.gather(slots), _joined(cand).gather(slots)
    assert ours.equal(reference)
    assert torch.equal(ours.tokens, reference.tokens)


@pytest.mark.parametrize(
    "pos",
    [
        [6, 0, 8, 2],  # clip, memory, clip, memory: four runs, each read from its part
        [0, 5, 1, 6, 2, 7, 3, 8, 4, 5],  # ten runs: read from the joined tokens
    ],
)
def test_positions_in_any_order_of_the_parts_read_the_same_tokens(pos: list[int]) -> None:
    memory = torch.randn(1, 5, 3)
    clip = torch.randn(1, 4, 3)
    steps = torch.arange(9)[None]
    valid = steps != 2  # an invalid candidate: its slots come out zero
    cand = Candidates((memory, clip), steps, torch.zeros_like(steps), valid, torch.tensor([9]))
    expected = torch.cat((memory, clip), 1)[:, pos] * valid[:, pos, None]
    assert torch.equal(cand.gather(torch.tensor([pos])).tokens, expected)


def test_a_full_memory_and_a_whole_clip_are_in_canonical_order_already(
    tiny_net: LongVMNet, make_tokens
) -> None:
    memory = _written(tiny_net, make_tokens, 17)
    assert bool(memory.valid.all())
    frames = tiny_net.cfg.clip_frames
    clip = ClipTokens.from_frames(make_tokens(2, seed=50), memory.frames_seen, frames)
    cand = Candidates.of(memory, clip)
    chosen = torch.ones_like(cand.valid)
    chosen[:, ::3] = False
    m = int(chosen[0].sum())
    assert torch.equal(cand.slots(chosen, m), _canonical(cand, chosen))


def test_training_reads_the_joined_tokens_so_gradients_reach_them() -> None:
    memory = torch.randn(1, 3, 2, requires_grad=True)
    clip = torch.randn(1, 2, 2)
    steps = torch.arange(5)[None]
    cand = Candidates((memory, clip), steps, torch.zeros_like(steps), steps >= 0, torch.tensor([5]))
    kept = cand.gather(torch.tensor([[1, 3, 4]]))
    kept.tokens.sum().backward()
    assert memory.grad is not None
    assert torch.equal(memory.grad[0, :, 0], torch.tensor([0.0, 1.0, 0.0]))
