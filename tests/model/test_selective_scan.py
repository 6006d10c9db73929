import pytest
import torch
import torch.nn.functional as F

from model.selective_scan import scan_chunked, scan_from, scan_reference, selective_scan


def _inputs(
    length: int, *, batch: int = 2, heads: int = 3, width: int = 5, state: int = 4, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, heads, width, generator=g, dtype=torch.float64)
    dt = F.softplus(torch.randn(batch, length, heads, generator=g, dtype=torch.float64) - 1)
    A = -(torch.rand(heads, generator=g, dtype=torch.float64) * 8 + 0.1)
    B = torch.randn(batch, length, state, generator=g, dtype=torch.float64)
    C = torch.randn(batch, length, state, generator=g, dtype=torch.float64)
    D = torch.randn(heads, generator=g, dtype=torch.float64)
    return x, dt, A, B, C, D


# lengths below, at and across chunk boundaries, and odd chunk counts for the pairwise scan
@pytest.mark.parametrize(
    ("length", "chunk"), [(1, 4), (4, 4), (7, 4), (37, 8), (100, 4), (130, 32)]
)
def test_the_chunked_scan_equals_the_recurrence(length: int, chunk: int) -> None:
    args = _inputs(length, seed=length)
    expected = scan_reference(*args)
    assert torch.allclose(scan_chunked(*args, chunk=chunk), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("length", "chunk"), [(9, 4), (70, 16)])
def test_the_chunked_scan_has_the_recurrences_gradients(length: int, chunk: int) -> None:
    leaves = [a.clone().requires_grad_() for a in _inputs(length, seed=7)]
    weights = torch.randn(length, 1, 1, dtype=torch.float64)  # a loss that weighs every step
    grads = []
    for scan in (scan_reference, lambda *a: scan_chunked(*a, chunk=chunk)):
        loss = (scan(*leaves) * weights).sum()
        grads.append(torch.autograd.grad(loss, leaves))
    names = ["x", "dt", "A", "B", "C", "D"]
    for name, chunked, reference in zip(names, grads[1], grads[0], strict=True):
        assert torch.allclose(chunked, reference, rtol=1e-9, atol=1e-9), name


# pieces shorter than, equal to and across chunks, and a short last piece
@pytest.mark.parametrize(("length", "piece", "chunk"), [(20, 32, 8), (70, 16, 8), (37, 5, 4)])
def test_a_scan_in_pieces_from_the_state_left_has_the_recurrences_values_and_gradients(
    length: int, piece: int, chunk: int
) -> None:
    leaves = [a.clone().requires_grad_() for a in _inputs(length, seed=length + 1)]
    x, dt, A, B, C, D = leaves
    weights = torch.randn(length, 1, 1, dtype=torch.float64)
    expected = scan_reference(*leaves)
    pieces, state = [], None
    for s in range(0, length, piece):
        e = s + piece
        y, state = scan_from(x[:, s:e], dt[:, s:e], A, B[:, s:e], C[:, s:e], D, state, chunk)
        pieces.append(y)
    got = torch.cat(pieces, dim=1)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10)
    want = torch.autograd.grad((expected * weights).sum(), leaves)
    have = torch.autograd.grad((got * weights).sum(), leaves)
    for name, a, b in zip(["x", "dt", "A", "B", "C", "D"], have, want, strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9), name


def test_off_cuda_the_scan_is_the_chunked_one() -> None:
    args = [a.float() for a in _inputs(70, seed=9)]
    assert torch.equal(selective_scan(*args), scan_chunked(*args))


def test_float32_stays_close_to_the_float64_recurrence_over_a_long_sequence() -> None:
    args = _inputs(3000, batch=1, heads=2, width=4, state=8, seed=3)
    expected = scan_reference(*args)
    got = scan_chunked(*(a.float() for a in args)).double()
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_a_step_size_of_zero_leaves_the_state_alone() -> None:
    x, dt, A, B, C, D = _inputs(24, seed=5)
    dt[:, 10:14] = 0.0  # four skipped tokens: whatever they carry must not reach later steps
    changed = x.clone()
    changed[:, 10:14] = 100.0
    before = scan_chunked(x, dt, A, B, C, D, chunk=8)
    after = scan_chunked(changed, dt, A, B, C, D, chunk=8)
    skipped = torch.zeros(24, dtype=torch.bool)
    skipped[10:14] = True
    assert torch.allclose(before[:, ~skipped], after[:, ~skipped], rtol=0, atol=1e-12)


def test_an_earlier_output_never_depends_on_a_later_token() -> None:
    x, dt, A, B, C, D = _inputs(40, seed=6)
    x.requires_grad_()
    (grad,) = torch.autograd.grad(scan_chunked(x, dt, A, B, C, D, chunk=8)[:, 20].sum(), x)
    assert grad[:, 21:].abs().max() == 0 and grad[:, :21].abs().max() > 0


def test_padding_at_the_end_changes_no_earlier_output_bit() -> None:
    x, dt, A, B, C, D = (a.float() for a in _inputs(150, seed=8))
    short = scan_chunked(x[:, :100], dt[:, :100], A, B[:, :100], C[:, :100], D)
    padded_dt = dt.clone()
    padded_dt[:, 100:] = 0.0
    long = scan_chunked(x, padded_dt, A, B, C, D)
    assert torch.equal(long[:, :100], short)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_fused_kernel_equals_the_recurrence() -> None:
    pytest.importorskip("mamba_ssm", reason="mamba-ssm is not installed")
    args = [a.float().cuda() for a in _inputs(700, batch=2, heads=4, width=16, state=16)]
    expected = scan_reference(*(a.double() for a in args))
    # stated tolerance: float32 kernels against the float64 recurrence
    assert torch.allclose(selective_scan(*args).double(), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_chunked_scan_equals_the_recurrence() -> None:
    """The pure-PyTorch scan, which runs on CUDA where mamba-ssm is absent (its CPU twin is
    the first test above): in float64 within 1e-10 of the recurrence, as on the CPU, and in
    float32 within the stated tolerance."""
    args = _inputs(700, batch=2, heads=4, width=16, state=16, seed=3)
    expected = scan_reference(*args)
    on_cuda = [a.cuda() for a in args]
    assert torch.allclose(scan_chunked(*on_cuda).cpu(), expected, rtol=1e-10, atol=1e-10)
    got = scan_chunked(*(a.float() for a in on_cuda)).double().cpu()
    assert torch.allclose(got, expected, rtol=2e-3, atol=2e-3)
