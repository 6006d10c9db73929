"""With ``memory_encoder_radius``, inference encodes a memory per block of tokens over just
the keys near it in time: the dense ``(B, m, m)`` mask's output, at a fraction of its cost."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model import LongVMNet, Memory, ModelConfig
from model.queries import ActivityQuery, ObjectQuery

RADIUS = dict(query_fusion="decoder", decoder_self_radius=2, memory_encoder_radius=2)


@pytest.fixture(scope="module")
def net() -> LongVMNet:
    torch.manual_seed(11)
    return LongVMNet(ModelConfig.preset("tiny", **RADIUS), pretrained_backbone=False).eval()


def _memory(cfg: ModelConfig, steps_of_session: list[list[int]], m: int = 80) -> Memory:
    """Sessions whose valid tokens sit at the given steps (ascending), empty slots after."""
    g = torch.Generator().manual_seed(len(steps_of_session))
    b = len(steps_of_session)
    time_index = torch.zeros(b, m, dtype=torch.int64)
    valid = torch.zeros(b, m, dtype=torch.bool)
    for i, steps in enumerate(steps_of_session):
        time_index[i, : len(steps)] = torch.tensor(steps, dtype=torch.int64)
        valid[i, : len(steps)] = True
    tokens = torch.randn(b, m, cfg.backbone_channels, generator=g) * valid[..., None]
    cells = torch.arange(m).expand(b, -1) % cfg.tokens_per_frame
    return Memory(tokens, time_index, cells, valid, time_index.amax(dim=1) + 1)


def _dense(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every memory look out of time order: the encoder takes the dense mask."""
    monkeypatch.setattr(Memory, "in_time_order", lambda self: False)


def _sessions() -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [
        [t // 2 for t in range(80)],  # full, two tokens a step
        sorted(rng.choice(200, 50, replace=False).tolist()),  # sparse, gaps past the radius
        [t // 16 for t in range(64)],  # whole frames: 16 tokens a step
        [5],  # one token
    ]


def test_the_near_keys_encode_as_the_dense_mask(
    net: LongVMNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = _memory(net.cfg, _sessions())
    coder = net.encoder_decoder
    with torch.no_grad():
        near = coder.project_memory(memory).tokens
        _dense(monkeypatch)
        dense = coder.project_memory(memory).tokens
    valid = memory.valid
    assert torch.allclose(near[valid], dense[valid], atol=1e-5)
    d = net.cfg.d_model  # the product-match embeddings follow the encoded channels
    assert not near[~valid][:, :d].any()  # empty slots encode as zeros, which nothing reads
    assert torch.isfinite(near).all()


def test_answers_from_the_near_keys_equal_the_dense_ones(
    net: LongVMNet, make_frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = _memory(net.cfg, _sessions())
    image = make_frames(1, 1, seed=3)[0, 0]
    questions = [
        ActivityQuery(0, image, 0, 40),
        ActivityQuery(1, image, 30, 120),
        ObjectQuery(2, 1, 0, 4),
        ObjectQuery(3, 0, 3, 9),
    ]
    near = net.answer(memory, questions)
    _dense(monkeypatch)
    dense = net.answer(memory, questions)
    for a, b in zip(near, dense, strict=True):
        for field, value in dataclasses.asdict(a).items():
            other = dataclasses.asdict(b)[field]
            if value is None:  # a field only a model pair fills (``naming``)
                assert other is None, field
                continue
            assert np.allclose(value, other, rtol=0, atol=1e-5), field


def test_training_keeps_the_dense_mask(net: LongVMNet, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    coder = net.encoder_decoder
    encode = type(coder)._encode_near

    def counted(self: object, x: torch.Tensor, memory: Memory) -> torch.Tensor:
        calls.append("near")
        return encode(self, x, memory)

    monkeypatch.setattr(type(coder), "_encode_near", counted)
    memory = _memory(net.cfg, _sessions()[:1])
    coder.train()
    try:
        coder.project_memory(memory)
    finally:
        coder.eval()
    assert calls == []
    coder.project_memory(memory)
    assert calls == ["near"]
