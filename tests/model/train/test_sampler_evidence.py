"""The sampler's evidence loss: labels line up with the candidates, and it teaches the
neural writer to keep the tokens that show the handled product."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from model import LongVMNet, ModelConfig
from model.candidates import Candidates
from model.data import SplitData, Step
from model.losses import loss_weights, sampler_evidence_loss
from model.train.loop import candidate_evidence


def test_candidate_evidence_reads_each_tokens_own_frame_and_cell() -> None:
    cells = torch.zeros(6, 16, dtype=torch.bool)  # video "a": 6 frames, 4 x 4 grid
    cells[2, 5] = cells[4, 0] = True
    data = SplitData("train", {"a": torch.zeros(6, 16, 8), "b": torch.zeros(6, 16, 8)}, {})
    data = SplitData(data.split, data.tokens, data.examples, handled={"a": cells})
    time_index = torch.tensor([[2, 2, 4, 4, 0], [2, 2, 4, 4, 0]])
    spatial_index = torch.tensor([[5, 6, 0, 1, 5], [5, 6, 0, 1, 5]])
    valid = torch.tensor([[True, True, True, True, False], [True] * 5])
    cand = Candidates(torch.zeros(2, 5, 8), time_index, spatial_index, valid, torch.tensor([6, 6]))
    evidence, known = candidate_evidence(data, [Step("a", 0), Step("b", 0)], cand)
    assert evidence[0].tolist() == [True, False, True, False, False]
    assert known[0].tolist() == [True, True, True, True, False]  # an empty slot says nothing
    assert not known[1].any() and not evidence[1].any()  # "b" has no boxes: unknown


def test_evidence_loss_is_the_mean_over_known_candidates_only() -> None:
    scores = torch.tensor([[2.0, -1.0, 30.0]])
    evidence = torch.tensor([[True, False, False]])
    known = torch.tensor([[True, True, False]])
    expected = torch.nn.functional.softplus(torch.tensor([-2.0, -1.0])).mean()
    assert sampler_evidence_loss(scores, evidence, known).item() == pytest.approx(expected.item())
    assert sampler_evidence_loss(scores, evidence, torch.zeros_like(known)).item() == 0.0


def test_only_presets_that_ask_for_it_weigh_the_evidence_loss() -> None:
    assert loss_weights(ModelConfig.preset("paper"))["sampler_evidence"] == 0.0
    assert loss_weights(ModelConfig.preset("tiny"))["sampler_evidence"] > 0.0


def test_evidence_loss_teaches_the_writer_to_keep_the_handled_cells(small_cfg) -> None:
    """Two clips of 4 frames x 16 cells, two cells per frame show "the product" (a shared
    direction in token space): 16 of 128 candidates for 32 memory slots."""
    torch.manual_seed(0)
    # the answer's product match is beside the point here and would draw from the RNG
    net = LongVMNet(dataclasses.replace(small_cfg, object_match_dim=0)).train()
    c, s, t = small_cfg.backbone_channels, small_cfg.tokens_per_frame, small_cfg.clip_frames
    product = torch.randn(c)

    def session(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        tokens = torch.randn(4, 2 * t, s, c, generator=g)  # (B, frames, S, C)
        handled = torch.zeros(4, 2 * t, s, dtype=torch.bool)
        for frame in range(2 * t):
            cells = torch.randperm(s, generator=g)[:2]
            handled[:, frame, cells] = True
        return tokens + 2.0 * handled[..., None] * product, handled

    def kept_handled(tokens: torch.Tensor, handled: torch.Tensor) -> float:
        with torch.no_grad():
            memory = net.write_tokens(net.write_tokens(None, tokens[:, :t]), tokens[:, t:])
        hits = handled[torch.arange(4)[:, None], memory.time_index, memory.spatial_index]
        return float(hits[memory.valid].float().sum() / handled.sum())

    test_tokens, test_handled = session(99)
    before = kept_handled(test_tokens, test_handled)
    optimizer = torch.optim.Adam(net.sampler.parameters(), lr=3e-3)
    for step in range(40):
        tokens, handled = session(step)
        first = net.write_tokens_train(None, tokens[:, :t], temperature=1.0).memory
        write = net.write_tokens_train(first.detach(), tokens[:, t:], temperature=1.0)
        cand = write.candidates
        evidence = handled[torch.arange(4)[:, None], cand.time_index, cand.spatial_index]
        loss = sampler_evidence_loss(write.scores, evidence & cand.valid, cand.valid)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = kept_handled(test_tokens, test_handled)
    assert before < 0.5 and after > 0.95, (before, after)
