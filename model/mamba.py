"""Bidirectional Mamba: VideoMamba's token mixer, a drop-in for self-attention.

VideoMamba (after Vision Mamba) mixes tokens with two selective scans over one ordering of
the tokens, one forward and one backward, each with its own convolution and scan
parameters, sharing the input and output projections. Its ordering is spatial first within
a frame, then time; here every token carries its frame step and grid cell, so the order is
``(time, cell)``, sorted per row. Tokens that are not valid (empty memory slots, padding)
go to the end and take no part: their step size is zero (the scan passes over them) and no
valid token comes after them in either direction. A valid token's output therefore depends
only on the valid tokens of its own row, as attention with a key mask does.

Shapes in the comments: Bt batch rows, L tokens, d model width, E = expand * d inner width,
H heads of P channels (E = H * P), N state size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import ModelConfig
from model.selective_scan import selective_scan


class ScanDirection(nn.Module):
    """One direction's causal convolution, input-dependent projections and scan parameters."""

    def __init__(self, inner: int, heads: int, state: int, kernel: int) -> None:
        super().__init__()
        self.heads, self.state = heads, state
        self.conv = nn.Conv1d(inner, inner, kernel, groups=inner, padding=kernel - 1)
        self.project = nn.Linear(inner, 2 * state + heads)  # B, C and the step size
        # Step sizes start between 0.001 and 0.1 (log-uniform), as Mamba initialises them.
        dt = torch.exp(torch.rand(heads) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, heads)))  # A = -exp(.)
        self.D = nn.Parameter(torch.ones(heads))

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Scan ``x`` ``(Bt, L, E)`` in its given order; ``valid`` ``(Bt, L)``."""
        length = x.shape[1]
        # causal: invalid tokens come after every valid one, so no valid token reads them
        x = F.silu(self.conv(x.transpose(1, 2))[..., :length].transpose(1, 2))
        B, C, dt = self.project(x).split((self.state, self.state, self.heads), dim=-1)
        dt = F.softplus(dt + self.dt_bias) * valid[..., None]  # (Bt, L, H); 0: skipped
        heads = x.view(*x.shape[:2], self.heads, -1)  # (Bt, L, H, P)
        y = selective_scan(heads, dt, -torch.exp(self.A_log), B, C, self.D)
        return y.reshape(x.shape)


class BiMamba(nn.Module):
    """Forward and backward selective scans over tokens in ``(time, cell)`` order."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        inner = cfg.ssm_expand * cfg.d_model
        heads = inner // cfg.ssm_head_dim
        self.into = nn.Linear(cfg.d_model, 2 * inner)  # scanned part and gate
        self.forward_scan = ScanDirection(inner, heads, cfg.ssm_state, cfg.ssm_conv)
        self.backward_scan = ScanDirection(inner, heads, cfg.ssm_state, cfg.ssm_conv)
        self.out = nn.Linear(inner, cfg.d_model)

    def forward(self, x: Tensor, order: Tensor, valid: Tensor) -> Tensor:
        """Mixed tokens ``(Bt, L, d)`` from ``x`` ``(Bt, L, d)``.

        Args:
            order: ``(Bt, L)`` integer sort keys (smaller first): ``scan_order``'s.
            valid: ``(Bt, L)`` bool; invalid tokens' outputs are meaningless.
        """
        # valid tokens first, by their key; stable, so equal keys keep their given order
        key = torch.where(valid, order, torch.iinfo(torch.int64).max)
        sort = torch.sort(key, dim=1, stable=True).indices  # (Bt, L)
        x, valid = _gather(x, sort), valid.gather(1, sort)
        scanned, gate = self.into(x).chunk(2, dim=-1)  # (Bt, L, E) each
        reverse = _reverse_valid(valid)  # (Bt, L): flips each row's valid prefix, keeps the rest
        ahead = self.forward_scan(scanned, valid)
        behind = _gather(self.backward_scan(_gather(scanned, reverse), valid), reverse)
        mixed = self.out((ahead + behind) / 2 * F.silu(gate))  # (Bt, L, d)
        return torch.empty_like(mixed).scatter_(1, _expand(sort, mixed), mixed)  # unsort


class MambaEncoderLayer(nn.Module):
    """VideoMamba's block in place of a transformer layer: pre-norm bidirectional Mamba with a
    residual, and no feed-forward (the gated inner width plays its part), as VideoMamba and
    Vision Mamba build theirs."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm_mixer = nn.LayerNorm(cfg.d_model)
        self.mixer = BiMamba(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, key_mask: Tensor | None, order: Tensor | None) -> Tensor:
        if order is None:
            raise ValueError("The Mamba mixer needs each token's scan order.")
        valid = key_mask if key_mask is not None else torch.ones_like(order, dtype=torch.bool)
        return x + self.dropout(self.mixer(self.norm_mixer(x), order, valid))


def scan_order(time_index: Tensor, spatial_index: Tensor, cells: int) -> Tensor:
    """Sort keys ``(...)`` for tokens: by frame step, then grid cell (row-major)."""
    return time_index.to(torch.int64) * cells + spatial_index.to(torch.int64)


# ---------------------------------------------------------------------- helpers
def _expand(index: Tensor, like: Tensor) -> Tensor:
    return index[..., None].expand(-1, -1, like.shape[-1])


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """Rows of ``x`` ``(Bt, L, d)`` reordered by ``index`` ``(Bt, L)``."""
    return x.gather(1, _expand(index, x))


def _reverse_valid(valid: Tensor) -> Tensor:
    """Per row, the permutation that reverses the first ``count`` positions (the valid ones,
    sorted to the front) and leaves the rest: its own inverse."""
    positions = torch.arange(valid.shape[1], device=valid.device).expand_as(valid)  # (Bt, L)
    count = valid.sum(dim=1, keepdim=True)  # (Bt, 1)
    return torch.where(positions < count, count - 1 - positions, positions)
