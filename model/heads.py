"""Prediction heads on the decoded window steps ``(N, L, d)``, and their decoding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.layers import MLP


def masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """``log_softmax`` over the last axis restricted to ``mask`` (-inf elsewhere)."""
    return logits.masked_fill(~mask, float("-inf")).log_softmax(dim=-1)


class ActivityHead(nn.Module):
    """MLP per window step → activity logits ``(N, num_activities)``: the maximum over the
    window's real steps ("did it happen anywhere in the window").

    Deviation: the paper pools the window before its MLP. A mean over the steps drowns a
    3 s event in a 4 min window, and did not learn on our data (``docs/MODEL.md``).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.mlp = MLP(cfg.d_model, cfg.d_model, cfg.num_activities, cfg.mlp_layers)

    def forward(self, steps: Tensor, step_mask: Tensor) -> Tensor:
        return self.pool(self.step_logits(steps), step_mask)

    def step_logits(self, steps: Tensor) -> Tensor:
        """Activity logits of every step ``(N, L, A)``: what happened at each moment."""
        return self.mlp(steps)

    @staticmethod
    def pool(step_logits: Tensor, step_mask: Tensor) -> Tensor:
        """The window's logits ``(N, A)``: the maximum over its real steps."""
        return step_logits.masked_fill(~step_mask[:, :, None], float("-inf")).amax(dim=1)


class BoxHead(nn.Module):
    """One box per step: ``(N, L, 4)`` as ``cx, cy, w, h`` in [0, 1] (sigmoid)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.mlp = MLP(cfg.d_model, cfg.d_model, 4, cfg.mlp_layers)

    def forward(self, steps: Tensor) -> Tensor:
        return self.mlp(steps).sigmoid()


class TimeHead(nn.Module):
    """Start and end logits per step: ``(N, L)`` each.

    The end logit of step j scores "step j is the last step of the activity": the
    end-exclusive answer is then ``j + 1``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.start = MLP(cfg.d_model, cfg.d_model, 1, cfg.mlp_layers)
        self.end = MLP(cfg.d_model, cfg.d_model, 1, cfg.mlp_layers)

    def forward(self, steps: Tensor) -> tuple[Tensor, Tensor]:
        return self.start(steps).squeeze(-1), self.end(steps).squeeze(-1)  # (N, L, 1) -> (N, L)


def decode_time(start_logits: Tensor, end_logits: Tensor) -> tuple[int, int, float]:
    """Best ``(s, e, p)`` with ``s < e`` for one window of L steps (logits ``(L,)``).

    Maximises ``log p_start(s) + log p_end(e - 1)`` over ``0 <= s <= e - 1 < L``; ``e`` is
    end-exclusive and ``p`` the probability of the pair.
    """
    log_start = start_logits.float().log_softmax(-1)  # (L,)
    log_end = end_logits.float().log_softmax(-1)  # (L,)
    pair = log_start[:, None] + log_end[None, :]  # (L, L): [s, last]
    allowed = torch.ones_like(pair, dtype=torch.bool).triu()  # last >= s
    pair = pair.masked_fill(~allowed, float("-inf"))
    best = int(torch.argmax(pair))
    s, last = divmod(best, pair.shape[1])
    return s, last + 1, float(pair[s, last].exp())
