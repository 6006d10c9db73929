"""Local cross-attention keys: the same attention as the dense time mask, a few keys a step."""

import dataclasses

import pytest
import torch

from model import LongVMNet, Memory, ModelConfig
from model.encoder_decoder import EncoderDecoder
from model.layers import Attention
from model.local_keys import BLOCK, LocalKeys
from model.network import LENGTH_SPREAD
from model.queries import ActivityQuery, ObjectQuery, TimeQuery


def _memory_times(m: int, frames: int, cells: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sessions' slot times: one with whole frames kept (``cells`` tokens at a step), one
    spread thin, each with some empty slots."""
    g = torch.Generator().manual_seed(seed)
    dense = (torch.arange(m) // cells).clamp(max=frames - 1)
    sparse = torch.randint(0, frames, (m,), generator=g)
    times = torch.stack((dense[torch.randperm(m, generator=g)], sparse))
    valid = torch.rand(2, m, generator=g) > 0.2
    return times, valid


@pytest.mark.parametrize(("radius", "length", "start"), [(0, 5, 3), (1, 37, 0), (2, 2 * BLOCK, 9)])
def test_local_keys_attend_exactly_as_the_dense_time_mask(
    radius: int, length: int, start: int
) -> None:
    cfg = dataclasses.replace(ModelConfig.preset("tiny"), decoder_time_radius=radius)
    m, own, d = 60, 3, cfg.d_model
    times, valid = _memory_times(m, frames=40, cells=cfg.tokens_per_frame, seed=length)
    memory = Memory(
        torch.zeros(2, m, 1), times, torch.zeros_like(times), valid, torch.tensor([40, 40])
    )
    steps = start + torch.arange(length).expand(2, -1)
    src_mask = torch.cat((valid, torch.ones(2, own, dtype=torch.bool)), dim=1)
    coder = EncoderDecoder(cfg).eval()
    dense = coder.cross_mask(memory, steps, src_mask)  # (2, L, m + own)
    local = coder.cross_keys(memory, steps, src_mask)
    assert isinstance(local, LocalKeys)
    assert local.index.shape[1] < m + own  # fewer keys than the whole memory

    torch.manual_seed(radius)
    attention = Attention(d, cfg.num_heads).double()
    x = torch.randn(2, length, d, dtype=torch.float64)
    context = torch.randn(2, m + own, d, dtype=torch.float64)
    expected = attention(x, context, dense)
    assert torch.allclose(attention(x, context, local), expected, rtol=1e-12, atol=1e-12)


def test_inference_answers_equal_the_dense_masks_answers(tiny_net: LongVMNet, make_frames) -> None:
    """The whole answer path, local keys (eval) against the dense mask (as in training)."""
    cfg = dataclasses.replace(tiny_net.cfg, decoder_time_radius=1)
    torch.manual_seed(1)
    net = LongVMNet(cfg, pretrained_backbone=False).eval()
    memory = net.populate(make_frames(1, 40))
    image = make_frames(1, 1, seed=3)[0, 0]
    queries = [
        ActivityQuery(0, image, 0, 40),
        ObjectQuery(0, 1, 5, 30),
        TimeQuery(0, 2, image, 10, 20),
    ]
    local = net.answer(memory, queries)
    coder = net.encoder_decoder
    coder.cross_keys = coder.cross_mask  # type: ignore[method-assign]  # the dense path
    dense = net.answer(memory, queries)
    assert torch.allclose(
        torch.as_tensor(local[0].probabilities), torch.as_tensor(dense[0].probabilities), atol=1e-6
    )
    assert torch.allclose(
        torch.as_tensor(local[1].boxes), torch.as_tensor(dense[1].boxes), atol=1e-6
    )
    assert (local[2].start, local[2].end) == (dense[2].start, dense[2].end)


def test_questions_are_answered_in_chunks_of_one_kind_and_similar_windows(
    tiny_net: LongVMNet, make_frames
) -> None:
    image = make_frames(1, 1)[0, 0]
    lengths = [3, 40, 5, 6, 1800, 900, 11, 12]
    queries = [ActivityQuery(0, image, 0, n) for n in lengths] + [ObjectQuery(0, 1, 0, 4)]
    chunks = list(tiny_net._batches(queries, max_tokens=1 << 30))
    assert sorted(r for c in chunks for r in c) == list(range(len(queries)))
    for chunk in chunks:
        assert len({type(queries[r]) for r in chunk}) == 1
        spans = [queries[r].end - queries[r].start for r in chunk]
        assert spans == sorted(spans) and max(spans) <= LENGTH_SPREAD * min(spans)
    assert [[lengths[r] for r in c] for c in chunks[:-1]] == [
        [3, 5, 6],
        [11, 12],
        [40],
        [900, 1800],
    ]


def test_the_additive_mask_is_made_once_and_attends_as_the_boolean_one() -> None:
    """Both decoder layers read one ``LocalKeys``: its mask is turned into the scores' 0 /
    -inf once, and attention with it has the bits of attention with the boolean mask."""
    import torch.nn.functional as F

    cfg = ModelConfig.preset("tiny")
    times, valid = _memory_times(60, frames=40, cells=cfg.tokens_per_frame, seed=3)
    steps = 4 + torch.arange(37).expand(2, -1)
    local = LocalKeys.near(times, valid, steps, 1, torch.ones(2, 3, dtype=torch.bool))
    additive = local.additive_mask(torch.float32)
    assert additive.shape == (local.blocks, 1, BLOCK, local.mask.shape[-1])
    assert torch.equal(additive[:, 0] == 0, local.mask)
    assert bool((additive[:, 0][~local.mask] == float("-inf")).all())
    assert local.additive_mask(torch.float32) is additive
    assert local.within_rows().additive_mask(torch.float32) is additive  # shared

    g = torch.Generator().manual_seed(0)
    q = torch.randn(local.blocks, 4, BLOCK, 16, generator=g)
    k, v = torch.randn(2, local.blocks, 4, local.mask.shape[-1], 16, generator=g)
    boolean = F.scaled_dot_product_attention(q, k, v, attn_mask=local.mask[:, None])
    assert torch.equal(F.scaled_dot_product_attention(q, k, v, attn_mask=additive), boolean)


@pytest.mark.parametrize(("radius", "lengths"), [(16, [40, 23, 1]), (2, [16, 16]), (0, [5, 33])])
def test_band_keys_read_in_place_attend_as_the_copied_ones(radius: int, lengths: list[int]) -> None:
    """A band's keys are a view of the steps laid end to end: every key a step may read
    holds what the copying gather gives, and attention has the same bits."""
    length = max(lengths)
    real = torch.arange(length)[None] < torch.tensor(lengths)[:, None]  # (N, L)
    band = LocalKeys.band(real, radius)
    copied = dataclasses.replace(band, band_radius=-1)  # the gather by ``index``
    g = torch.Generator().manual_seed(radius)
    context = torch.randn(len(lengths), length, 8, generator=g)
    read = band.mask.any(dim=1)  # (N * nb, W): keys some step of the block reads
    assert torch.equal(band.keys(context)[read], copied.keys(context)[read])
    assert band.keys(context).stride()[0] == BLOCK * 8  # a view: one block further on

    torch.manual_seed(1)
    attention = Attention(64, 4).eval()
    x = torch.randn(len(lengths), length, 64, generator=g)
    with torch.no_grad():
        assert torch.equal(attention(x, x, band), attention(x, x, copied))


def test_a_memory_in_time_order_reads_the_keys_of_the_dense_mask_without_sorting() -> None:
    """Answers read memories in time order (valid slots first): their slots are taken as
    they lie, and attend as the dense time mask says."""
    cfg = dataclasses.replace(ModelConfig.preset("tiny"), decoder_time_radius=1)
    m, own, d = 60, 3, cfg.d_model
    times, valid = _memory_times(m, frames=40, cells=cfg.tokens_per_frame, seed=8)
    times = torch.sort(times, dim=1).values
    valid = torch.arange(m)[None] < torch.tensor([[50], [m]])  # empty slots last
    memory = Memory(
        torch.zeros(2, m, 1), times, torch.zeros_like(times), valid, torch.tensor([40, 40])
    )
    assert memory.in_time_order()
    steps = 3 + torch.arange(21).expand(2, -1)
    src_mask = torch.cat((valid, torch.ones(2, own, dtype=torch.bool)), dim=1)
    coder = EncoderDecoder(cfg).eval()
    local = coder.cross_keys(memory, steps, src_mask)
    assert isinstance(local, LocalKeys)
    torch.manual_seed(2)
    attention = Attention(d, cfg.num_heads).double()
    x = torch.randn(2, 21, d, dtype=torch.float64)
    context = torch.randn(2, m + own, d, dtype=torch.float64)
    expected = attention(x, context, coder.cross_mask(memory, steps, src_mask))
    assert torch.allclose(attention(x, context, local), expected, rtol=1e-12, atol=1e-12)
