"""``query_fusion == "decoder"``: the memory is encoded once, whatever the question, and
the question is applied to what the decoder reads; ``decoder_self_radius`` keeps each
step's self-attention to the steps near it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model import LongVMNet, Memory, ModelConfig
from model.errors import ConfigError
from model.layers import Attention
from model.local_keys import BLOCK, LocalKeys
from model.queries import ActivityQuery, ObjectQuery, TimeQuery

FUSED = dict(query_fusion="decoder", decoder_self_radius=3)


@pytest.fixture(scope="module")
def fused_net() -> LongVMNet:
    torch.manual_seed(2)
    return LongVMNet(ModelConfig.preset("tiny", **FUSED)).eval()


def _queries(image) -> list:
    return [
        ActivityQuery(0, image, 0, 40),
        ObjectQuery(1, 1, 5, 30),
        TimeQuery(0, 2, image, 10, 20),
        ActivityQuery(1, image, 3, 9),
    ]


def _same(a: list, b: list) -> bool:
    """Bit-identical predictions (every field of every answer, arrays included)."""

    def fields(p: object) -> list:
        return [np.asarray(v).tobytes() for v in dataclasses.asdict(p).values()]

    return [fields(p) for p in a] == [fields(p) for p in b]


def _two_tokens_a_step(cfg: ModelConfig, m: int = 64) -> Memory:
    """One session's full memory of random tokens, two a step: steps 0 .. m / 2 - 1."""
    g = torch.Generator().manual_seed(1)
    return Memory(
        torch.randn(1, m, cfg.backbone_channels, generator=g),
        (torch.arange(m) // 2)[None],
        (torch.arange(m) % cfg.tokens_per_frame)[None],
        torch.ones(1, m, dtype=torch.bool),
        torch.tensor([m // 2]),
    )


@pytest.mark.parametrize(
    ("radius", "length", "real"), [(0, 5, 5), (2, 37, 30), (BLOCK, 3 * BLOCK + 1, 20)]
)
def test_band_keys_attend_exactly_as_the_dense_band_mask(radius: int, length: int, real: int):
    lengths = torch.tensor([length, real])
    mask = torch.arange(length)[None] < lengths[:, None]  # (2, L): the second query is shorter
    t = torch.arange(length)
    dense = ((t[None, :, None] - t[None, None, :]).abs() <= radius) & (
        mask[:, None, :] | torch.eye(length, dtype=torch.bool)[None]
    )  # (2, L, L)
    band = LocalKeys.band(mask, radius)
    assert band.index.shape[1] == BLOCK + 2 * radius
    torch.manual_seed(radius)
    attention = Attention(16, 4).double()
    x = torch.randn(2, length, 16, dtype=torch.float64)
    expected = attention(x, x, dense)
    got = attention(x, x, band)
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_a_step_outside_the_radius_changes_nothing(fused_net: LongVMNet) -> None:
    """The decoder with a self radius: step t's output ignores a step farther than the
    layers x radius reach, and does hear a step within it."""
    decoder = fused_net.encoder_decoder.decoder
    layers, radius = len(decoder.layers), fused_net.cfg.decoder_self_radius
    d, length = fused_net.cfg.d_model, 40
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(1, length, d, generator=g)
    encoded = torch.randn(1, 5, d, generator=g)
    out = decoder(queries, encoded)
    far = queries.clone()
    far[0, layers * radius + 1] += 1.0  # just out of step 0's reach
    assert torch.equal(decoder(far, encoded)[0, 0], out[0, 0])
    near = queries.clone()
    near[0, layers * radius] += 1.0
    assert not torch.equal(decoder(near, encoded)[0, 0], out[0, 0])


def test_with_an_encoder_radius_a_token_hears_only_the_memory_near_it_in_time() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", memory_encoder_radius=2, **FUSED)
    coder = LongVMNet(cfg, pretrained_backbone=False).encoder_decoder.eval()
    memory = _two_tokens_a_step(cfg)
    reach = cfg.encoder_layers * cfg.memory_encoder_radius  # steps a token hears through
    with torch.no_grad():
        out = coder.project_memory(memory).tokens
        far, near = memory.tokens.clone(), memory.tokens.clone()
        far[0, 2 * (reach + 1)] += 1.0  # a token of step reach + 1
        near[0, 2 * reach] += 1.0  # a token of step reach
        heard_far = coder.project_memory(dataclasses.replace(memory, tokens=far)).tokens
        heard_near = coder.project_memory(dataclasses.replace(memory, tokens=near)).tokens
    d = cfg.d_model
    assert torch.equal(heard_far[0, :2, :d], out[0, :2, :d])  # step 0's tokens
    assert not torch.equal(heard_near[0, :2, :d], out[0, :2, :d])


@pytest.mark.parametrize("glance", [0, 1])
def test_the_far_memory_reaches_an_answer_only_through_the_glance(glance: int, make_frames):
    torch.manual_seed(0)
    cfg = ModelConfig.preset(
        "tiny", query_fusion="decoder", decoder_self_radius=2, memory_encoder_radius=1,
        glance_layers=glance,
    )  # fmt: skip
    net = LongVMNet(cfg, pretrained_backbone=False).eval()
    memory = _two_tokens_a_step(cfg)
    far = memory.tokens.clone()
    far[0, 60] += 1.0  # step 30: out of the encoder's and the decoder's reach of steps 0-3
    question = [ActivityQuery(0, make_frames(1, 1, seed=3)[0, 0], 0, 4)]
    before = net.answer(memory, question)[0].probabilities
    after = net.answer(dataclasses.replace(memory, tokens=far), question)[0].probabilities
    assert np.array_equal(before, after) == (glance == 0)


def test_the_memory_is_encoded_once_and_reused_by_every_question(
    fused_net: LongVMNet, make_frames
) -> None:
    memory = fused_net.populate(make_frames(2, 40))
    image = make_frames(1, 1, seed=3)[0, 0]
    calls: list[int] = []
    hook = fused_net.encoder_decoder.encoder.register_forward_hook(
        lambda _m, _args, out: calls.append(out.shape[0])
    )
    try:
        prepared = fused_net.prepare(memory)
        assert calls == [2]  # both sessions, once
        assert prepared.memory.tokens.shape[-1] == 2 * fused_net.cfg.d_model  # d + match E
        first = fused_net.answer(prepared, _queries(image))
        again = fused_net.answer(prepared, _queries(image)[::-1])
        assert calls == [2]  # no question ran the encoder
    finally:
        hook.remove()
    assert _same(first, again[::-1])
    assert _same(first, fused_net.answer(memory, _queries(image)))  # unprepared: the same


def test_answers_do_not_depend_on_their_company(fused_net: LongVMNet, make_frames) -> None:
    """Bit for bit where each question's batch is the same in company and alone (here: its
    kind and window length keep it apart). A long window read from its session's timeline
    (``model.timelines``) has its edges decoded in a batch with other short windows, whose
    shapes change the rounding: within float rounding then."""
    memory = fused_net.prepare(fused_net.populate(make_frames(2, 40)))
    image = make_frames(1, 1, seed=3)[0, 0]
    together = fused_net.answer(memory, _queries(image), share_timelines=False)
    alone = [fused_net.answer(memory, [q], share_timelines=False)[0] for q in _queries(image)]
    assert _same(together, alone)
    shared = fused_net.answer(memory, _queries(image))
    shared_alone = [fused_net.answer(memory, [q])[0] for q in _queries(image)]
    for mine, single in zip(shared, shared_alone, strict=True):
        for field in dataclasses.fields(mine):
            ours, theirs = getattr(mine, field.name), getattr(single, field.name)
            if ours is None:  # a field only a model pair fills (``naming``)
                assert theirs is None, field.name
                continue
            assert np.allclose(np.asarray(ours), np.asarray(theirs), rtol=0, atol=1e-6)


def test_the_question_changes_what_the_decoder_reads(fused_net: LongVMNet, make_frames) -> None:
    memory = fused_net.populate(make_frames(1, 40))
    one, other = make_frames(2, 1, seed=5)[:, 0]
    a = fused_net.answer(memory, [ActivityQuery(0, one, 0, 40)])[0]
    b = fused_net.answer(memory, [ActivityQuery(0, other, 0, 40)])[0]
    assert not np.array_equal(a.probabilities, b.probabilities)


def test_a_memory_prepared_by_another_model_is_refused(fused_net: LongVMNet, make_frames) -> None:
    memory = fused_net.populate(make_frames(1, 20))
    torch.manual_seed(3)
    other = LongVMNet(ModelConfig.preset("tiny", **FUSED), pretrained_backbone=False).eval()
    image = make_frames(1, 1, seed=3)[0, 0]
    with pytest.raises(ValueError, match="prepared by another model"):
        other.answer(fused_net.prepare(memory), [ActivityQuery(0, image, 0, 20)])


def test_a_memory_with_no_valid_slot_still_prepares_without_nan(fused_net: LongVMNet) -> None:
    cfg = fused_net.cfg
    empty = Memory.empty(cfg, 1)
    prepared = fused_net.prepare(empty)
    assert torch.isfinite(prepared.memory.tokens).all()


def test_the_options_travel_with_the_checkpoint_and_older_ones_read_as_the_paper(
    tmp_path: Path,
) -> None:
    LongVMNet(ModelConfig.preset("tiny", **FUSED), pretrained_backbone=False).save(tmp_path / "r")
    cfg = LongVMNet.load(tmp_path / "r").cfg
    assert (cfg.query_fusion, cfg.decoder_self_radius) == ("decoder", 3)
    config = tmp_path / "r" / "config.json"
    raw = json.loads(config.read_text())
    for key in ("query_fusion", "decoder_self_radius"):
        del raw["config"][key]
    config.write_text(json.dumps(raw))
    with pytest.raises(Exception, match="does not match"):  # a fused net's extra norm
        LongVMNet.load(tmp_path / "r")
    defaults = ModelConfig.preset("tiny")
    assert (defaults.query_fusion, defaults.decoder_self_radius) == ("encoder", -1)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"query_fusion": "middle"}, "query_fusion"),
        ({"decoder_self_radius": -2}, "decoder_self_radius"),
        ({"memory_encoder_radius": -2}, "memory_encoder_radius"),
        ({"memory_encoder_radius": 4}, "memory_encoder_radius"),  # needs decoder fusion
        ({"memory_encoder_radius": 4, "query_fusion": "decoder", "mixer": "mamba"}, "mixer"),
        ({"glance_layers": 1}, "glance_layers"),  # needs decoder fusion
        ({"glance_layers": -1, "query_fusion": "decoder"}, "glance_layers"),
    ],
)
def test_unknown_settings_are_refused(settings: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        ModelConfig.preset("tiny", **settings)
