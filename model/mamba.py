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
from torch.utils.checkpoint import checkpoint

from model.config import ModelConfig
from model.layers import inverse_permutation, take_rows
from model.selective_scan import has_fused_kernel, scan_from, selective_scan

#: Tokens per segment of a direction: each segment starts from the scan state the one
#: before left, so memory for a segment's insides is bounded whatever the length.
SEGMENT = 4096
#: Up to this many tokens a layer keeps its insides for the backward pass (~30 KB a token
#: at the paper's widths, 0.5 GB at 16k): the fastest training step. Beyond it each
#: segment's work (convolution, projections, scan; and the gating after both directions) is
#: recomputed in the backward pass instead of kept (``torch.utils.checkpoint``), ~20%
#: slower: a layer then keeps about ``2 d + 5 E`` floats per token (its input, the input
#: projection, the reversed scanned half, both directions' outputs) instead of ~14 E, and
#: the backward pass's working memory is one segment's. 200k tokens fit 24 GB only so.
KEEP_UP_TO = 16_384


class ScanDirection(nn.Module):
    """One direction's causal convolution, input-dependent projections and scan parameters."""

    def __init__(self, inner: int, heads: int, state: int, kernel: int) -> None:
        super().__init__()
        self.heads, self.state, self.kernel = heads, state, kernel
        self.conv = nn.Conv1d(inner, inner, kernel, groups=inner, padding=kernel - 1)
        self.project = nn.Linear(inner, 2 * state + heads)  # B, C and the step size
        # Step sizes start between 0.001 and 0.1 (log-uniform), as Mamba initialises them.
        dt = torch.exp(torch.rand(heads) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 16.0, heads)))  # A = -exp(.)
        self.D = nn.Parameter(torch.ones(heads))

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """The scan ``(Bt, L, E)`` of ``x`` ``(Bt, L, E)`` in its given order; ``valid``
        ``(Bt, L)``.

        Segment after segment, each starting from the state the one before left and
        reading the ``kernel - 1`` tokens before it for its convolution; one segment when
        ``mamba_ssm``'s kernel scans (it keeps nothing of the scan's inside itself).
        """
        fused = has_fused_kernel(x.device)
        segment = x.shape[1] if fused else max(SEGMENT, self.kernel - 1)
        recompute = not fused and torch.is_grad_enabled() and x.shape[1] > KEEP_UP_TO
        # split, not sliced: the backward pass then puts the pieces' gradients together once
        pieces, state, before = [], None, None
        for piece, piece_valid in zip(x.split(segment, 1), valid.split(segment, 1), strict=True):
            args = (before, piece, piece_valid, state)
            if recompute:
                y, state = checkpoint(
                    self._segment, *args, use_reentrant=False, preserve_rng_state=False
                )
            else:
                y, state = self._segment(*args)
            pieces.append(y)
            before = piece[:, piece.shape[1] - (self.kernel - 1) :]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)

    def _segment(
        self,
        before: Tensor | None,
        x: Tensor,
        valid: Tensor,
        state: Tensor | None,
    ) -> tuple[Tensor, Tensor | None]:
        """One segment ``x`` ``(Bt, l, E)``, ``valid`` ``(Bt, l)``, after the tokens
        ``before`` ``(Bt, kernel - 1, E)`` (None: it is the first) and the scan state they
        left. Returns its scan ``(Bt, l, E)`` and the state it leaves."""
        length = x.shape[1]
        if before is not None:  # what the convolution reads before the segment's first token
            x = torch.cat((before, x), dim=1)
        lookback = x.shape[1] - length
        # causal: invalid tokens come after every valid one, so no valid token reads them
        u = self.conv(x.transpose(1, 2))[..., lookback : lookback + length].transpose(1, 2)
        u = F.silu(u)  # (Bt,l,E)
        B, C, dt = self.project(u).split((self.state, self.state, self.heads), dim=-1)
        dt = F.softplus(dt + self.dt_bias) * valid[..., None]  # (Bt, l, H); 0: skipped
        heads = u.reshape(*u.shape[:2], self.heads, -1)  # (Bt, l, H, P)
        A = -torch.exp(self.A_log)
        if has_fused_kernel(u.device):  # the whole sequence in one segment
            return selective_scan(heads, dt, A, B, C, self.D).reshape(u.shape), None
        y, final = scan_from(heads, dt, A, B, C, self.D, state)
        return y.reshape(u.shape), final


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
        x, valid = take_rows(x, sort), valid.gather(1, sort)
        scanned, gate = self.into(x).chunk(2, dim=-1)  # (Bt, L, E) each
        reverse = _reverse_valid(valid)  # (Bt, L): flips each row's valid prefix, keeps the rest
        ahead = self.forward_scan(scanned, valid)  # (Bt, L, E)
        behind = take_rows(self.backward_scan(take_rows(scanned, reverse), valid), reverse)
        if torch.is_grad_enabled() and x.shape[1] > KEEP_UP_TO:  # kept: the inputs only
            pieces = zip(*(v.split(SEGMENT, 1) for v in (ahead, behind, gate)), strict=True)
            mixed = torch.cat(
                [
                    checkpoint(self._mix, *piece, use_reentrant=False, preserve_rng_state=False)
                    for piece in pieces
                ],
                dim=1,
            )
        else:
            mixed = self._mix(ahead, behind, gate)
        return take_rows(mixed, inverse_permutation(sort))  # (Bt, L, d), back in the given order

    def _mix(self, ahead: Tensor, behind: Tensor, gate: Tensor) -> Tensor:
        """Both directions' scans gated: ``(Bt, l, d)`` from three ``(Bt, l, E)``."""
        return self.out((ahead + behind) / 2 * F.silu(gate))


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
def _reverse_valid(valid: Tensor) -> Tensor:
    """Per row, the permutation that reverses the first ``count`` positions (the valid ones,
    sorted to the front) and leaves the rest: its own inverse."""
    positions = torch.arange(valid.shape[1], device=valid.device).expand_as(valid)  # (Bt, L)
    count = valid.sum(dim=1, keepdim=True)  # (Bt, 1)
    return torch.where(positions < count, count - 1 - positions, positions)
