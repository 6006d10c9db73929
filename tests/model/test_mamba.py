import dataclasses

import pytest
import torch

from model import LongVMNet, ModelConfig, mamba
from model.mamba import BiMamba, MambaEncoderLayer, ScanDirection, scan_order

CFG = ModelConfig.preset("tiny", mixer="mamba", d_model=32, ssm_head_dim=16, dropout=0.0)


def _mixer(seed: int = 0) -> BiMamba:
    torch.manual_seed(seed)
    return BiMamba(CFG).double()


def _influence(mixer: BiMamba, x: torch.Tensor, order: torch.Tensor, valid: torch.Tensor, i: int):
    """Per token j, how much token i's output depends on token j's input: ``(L,)``."""
    x = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(mixer(x, order, valid)[0, i].sum(), x)
    return grad[0].abs().sum(-1)


def test_each_direction_reads_only_one_side_of_the_scan_order() -> None:
    mixer = _mixer()
    length = 12
    positions = torch.randperm(length, generator=torch.Generator().manual_seed(1))
    order = positions[None]  # token at array index j is scanned at place positions[j]
    x = torch.randn(1, length, CFG.d_model, dtype=torch.float64)
    valid = torch.ones(1, length, dtype=torch.bool)
    first, last = int(positions.argmin()), int(positions.argmax())

    ahead, behind = mixer.forward_scan, mixer.backward_scan
    mixer.backward_scan = _Silent()  # the forward scan alone: the first token sees itself only
    seen = _influence(mixer, x, order, valid, first)
    assert seen[first] > 0 and seen.sum() == seen[first]
    assert (_influence(mixer, x, order, valid, last) > 0).all()

    mixer.forward_scan, mixer.backward_scan = _Silent(), behind  # backward: the mirror image
    seen = _influence(mixer, x, order, valid, last)
    assert seen[last] > 0 and seen.sum() == seen[last]
    assert (_influence(mixer, x, order, valid, first) > 0).all()
    mixer.forward_scan = ahead


def test_scan_order_is_time_then_grid_cell() -> None:
    time = torch.tensor([[2, 0, 1, 0]])
    cell = torch.tensor([[0, 3, 1, 1]])
    assert scan_order(time, cell, cells=4).argsort().tolist() == [[3, 1, 2, 0]]


def test_invalid_tokens_change_nothing_that_valid_tokens_get() -> None:
    mixer = _mixer(2).float()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 10, CFG.d_model, generator=g)
    order = torch.arange(10)[None]
    valid = torch.ones(1, 10, dtype=torch.bool)
    alone = mixer(x, order, valid)
    # the same ten tokens among invalid ones of any content and place, in a longer row
    mixed = torch.randn(1, 25, CFG.d_model, generator=g) * 50
    places = torch.randperm(25, generator=g)[:10].sort().values
    mixed[0, places] = x[0]
    mixed_order = torch.randint(0, 5, (1, 25), generator=g)
    mixed_order[0, places] = order[0]
    mixed_valid = torch.zeros(1, 25, dtype=torch.bool)
    mixed_valid[0, places] = True
    # equal up to rounding: matrix products over 25 rows may round apart from 10 (a write
    # always has the same rows per session); any leak of the invalid tokens would be large
    got = mixer(mixed, mixed_order, mixed_valid)[0, places]
    assert torch.allclose(got, alone[0], rtol=1e-5, atol=1e-6)


def test_a_mamba_layer_is_the_residual_of_its_mixer() -> None:
    layer = MambaEncoderLayer(CFG).eval()
    x = torch.randn(2, 6, CFG.d_model)
    order = torch.arange(6).expand(2, -1)
    expected = x + layer.mixer(layer.norm_mixer(x), order, torch.ones(2, 6, dtype=torch.bool))
    assert torch.equal(layer(x, None, order), expected)


def test_the_checkpoint_says_which_mixer_and_rebuilds_it(tmp_path) -> None:
    net = LongVMNet(dataclasses.replace(CFG, memory_size=32))
    loaded = LongVMNet.load(net.save(tmp_path))
    assert loaded.cfg.mixer == "mamba"
    assert any(isinstance(m, ScanDirection) for m in loaded.sampler.modules())
    assert any(isinstance(m, ScanDirection) for m in loaded.encoder_decoder.modules())


def _saved_floats(forward) -> int:
    """Elements the autograd graph of ``forward()`` keeps for the backward pass."""
    saved: list[int] = []

    def keep(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        forward()
    return sum(saved)


class _Silent(torch.nn.Module):
    """A scan direction that contributes nothing."""

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


@pytest.mark.parametrize("recomputed", [False, True])
def test_a_direction_in_segments_has_the_whole_sequences_values_and_gradients(
    monkeypatch, recomputed: bool
) -> None:
    """Segments (kept, or recomputed in the backward pass) against one segment of the whole
    sequence, with invalid tokens at the end as the mixer sorts them."""
    length, d = 45, CFG.d_model
    monkeypatch.setattr(mamba, "KEEP_UP_TO", 0 if recomputed else length)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, length, d, generator=g, dtype=torch.float64)
    order = torch.stack([torch.randperm(length, generator=g) for _ in range(2)])
    valid = torch.ones(2, length, dtype=torch.bool)
    valid[1, 30:] = False
    results = []
    for segment in (length, 8, 7):  # one; several with a short last one; not a chunk's multiple
        monkeypatch.setattr(mamba, "SEGMENT", segment)
        mixer = _mixer(seed=4)
        leaf = x.clone().requires_grad_()
        out = mixer(leaf, order, valid)
        loss = (out * torch.linspace(-1, 1, length, dtype=torch.float64)[None, :, None])[valid]
        grads = torch.autograd.grad(loss.sum(), [leaf, *mixer.parameters()])
        results.append((out[valid], grads))
    (whole, expected), *segmented = results
    for values, grads in segmented:
        assert torch.allclose(values, whole, rtol=1e-10, atol=1e-10)
        for got, want in zip(grads, expected, strict=True):
            assert torch.allclose(got, want, rtol=1e-9, atol=1e-9)


def test_long_sequences_recompute_their_segments_in_the_backward_pass(monkeypatch) -> None:
    monkeypatch.setattr(mamba, "SEGMENT", 8)
    mixer, x = _mixer(seed=6), torch.randn(1, 30, CFG.d_model, dtype=torch.float64)
    order, valid = torch.arange(30)[None], torch.ones(1, 30, dtype=torch.bool)
    kept = []
    for limit in (30, 29):  # kept up to 30 tokens; recomputed above 29
        monkeypatch.setattr(mamba, "KEEP_UP_TO", limit)
        kept.append(_saved_floats(lambda: mixer(x.clone().requires_grad_(), order, valid)))
    assert kept[1] < kept[0] / 2


def test_inference_in_segments_equals_training_in_segments(monkeypatch) -> None:
    monkeypatch.setattr(mamba, "SEGMENT", 8)
    mixer = _mixer(seed=5)
    x = torch.randn(1, 30, CFG.d_model, dtype=torch.float64)
    order = torch.arange(30)[None]
    valid = torch.ones(1, 30, dtype=torch.bool)
    with torch.no_grad():
        inferred = mixer(x, order, valid)
    assert torch.equal(mixer(x, order, valid), inferred)
