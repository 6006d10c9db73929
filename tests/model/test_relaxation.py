import pytest
import torch

from model.relaxation import exact_top_k, gumbel_noise, relaxed_top_k


def _scores(b: int = 3, n: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, n, generator=torch.Generator().manual_seed(seed))


def test_forward_is_the_exact_top_k_of_the_perturbed_scores() -> None:
    scores, k = _scores(), 17
    top = relaxed_top_k(scores, k, 1.0, generator=torch.Generator().manual_seed(5))
    noise = gumbel_noise(
        scores.shape, device=scores.device, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(top.hard, exact_top_k(scores + noise, k))
    assert (top.hard.sum(-1) == k).all()
    # Straight-through: the weights are exactly 1.0 and 0.0 in value.
    assert torch.equal(top.weights, top.hard.float())


def test_soft_weights_are_in_unit_interval_and_agree_with_the_hard_choice() -> None:
    top = relaxed_top_k(_scores(n=200), 60, 0.5, generator=torch.Generator().manual_seed(1))
    assert ((top.soft > 0) & (top.soft < 1)).all()  # unlike the iterative softmax (up to ~13)
    assert torch.equal(top.soft > 0.5, top.hard)


def test_gradient_reaches_every_score_and_ignores_a_common_shift() -> None:
    scores = _scores().requires_grad_(True)
    top = relaxed_top_k(scores, 10, 1.0, generator=torch.Generator().manual_seed(2))
    values = torch.randn(scores.shape, generator=torch.Generator().manual_seed(3))
    (top.weights * values).sum().backward()
    grad = scores.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert (grad.abs() > 0).float().mean() > 0.9
    # The threshold moves with the scores: top-k is shift invariant, so is the gradient.
    assert torch.allclose(grad.sum(-1), torch.zeros(3), atol=1e-5)


def test_invalid_tokens_are_never_kept_while_enough_are_valid() -> None:
    scores = _scores(n=30) + 0.0
    valid = torch.ones_like(scores, dtype=torch.bool)
    valid[:, :10] = False
    scores[:, :10] = 100.0  # would win if they counted
    top = relaxed_top_k(scores, 12, 1.0, valid, generator=torch.Generator().manual_seed(0))
    assert not (top.hard & ~valid).any()
    assert torch.equal(top.soft[:, :10], torch.zeros(3, 10))


def test_fewer_valid_than_k_keeps_all_valid_with_finite_gradients() -> None:
    scores = _scores(n=20).requires_grad_(True)
    valid = torch.zeros(3, 20, dtype=torch.bool)
    valid[:, :5] = True
    valid[2] = False  # a session with nothing valid at all
    top = relaxed_top_k(scores, 8, 1.0, valid, generator=torch.Generator().manual_seed(0))
    assert (top.hard & valid).sum().item() == 10  # every valid token of sessions 0 and 1
    assert (top.soft[valid] > 0.5).all()
    top.weights.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_exact_top_k_breaks_ties_towards_the_lower_index() -> None:
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0]])
    assert exact_top_k(scores, 2).tolist() == [[False, True, True, False, False]]


def _top_k_by_stable_sort(scores: torch.Tensor, k: int, valid: torch.Tensor) -> torch.Tensor:
    """The rule ``exact_top_k`` keeps: a stable descending sort's first k, invalid last."""
    masked = scores.masked_fill(~valid, float("-inf"))
    order = torch.sort(masked, dim=-1, descending=True, stable=True).indices
    return torch.zeros_like(valid).scatter_(-1, order[:, :k], True)


@pytest.mark.parametrize("seed", range(6))
def test_exact_top_k_chooses_as_a_stable_sort_with_ties_invalid_and_nan(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n, k = 300, 270
    scores = torch.randint(0, 6 if seed % 2 else 10_000, (3, n), generator=g).float()  # ties
    valid = torch.rand(3, n, generator=g) > (0.02 if seed < 3 else 0.2)  # row 2: fewer than k
    valid[2, k - 10 :] = False
    if seed == 5:
        scores[1, 7] = float("nan")  # ranks first, as in the sort
    chosen = exact_top_k(scores, k, valid)
    assert torch.equal(chosen, _top_k_by_stable_sort(scores, k, valid))
    assert chosen.sum(dim=-1).tolist() == [k] * 3
