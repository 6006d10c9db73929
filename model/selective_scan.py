"""The selective scan of a Mamba block: ``h_t = a_t h_{t-1} + dt_t x_t B_t^T``, ``y_t = h_t C_t``.

The recurrence, per batch row and head ``h`` (state ``(P, N)``)::

    a_t = exp(dt_t[h] * A[h])                         # decay in (0, 1], one per head
    h_t = a_t * h_{t-1} + dt_t[h] * outer(x_t[h], B_t)
    y_t[h] = h_t @ C_t + D[h] * x_t[h]

One decay per head (Mamba-2's form of the selective scan; VideoMamba's Mamba-1 keeps one per
channel and state) is what makes the scan a few matrix products: within a chunk of ``T``
tokens the decays between any two tokens form a ``(T, T)`` matrix per head, and a chunk's
effect on the next is one ``(P, N)`` state per head. A per-channel-and-state decay needs the
whole ``(L, P * H, N)`` state sequence in memory (docs/MODEL.md has the arithmetic).

Implementations of the same function:

- ``scan_reference``: the recurrence step by step; the definition the others are tested on.
- ``scan_chunked``: pure PyTorch, any device: exact within-chunk products, then the chunk
  states combined by a work-efficient parallel (associative) scan over chunks.
- ``scan_from``: the same from a given state, returning the state it leaves: what lets
  ``model.mamba`` scan a long sequence in segments and recompute each in the backward pass.
- on CUDA, ``mamba_ssm``'s fused kernel (``mamba_chunk_scan_combined``) when the package is
  installed; ``selective_scan`` picks it.

A token with ``dt = 0`` leaves the state unchanged and adds nothing: that is how padding and
invalid tokens are kept out of the scan.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: Tokens per chunk: the within-chunk products cost ``L * T`` per head, the state
#: combinations ``L / T`` states of ``(N, P)``.
CHUNK = 32


def scan_reference(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor) -> Tensor:
    """The recurrence one token at a time.

    Args:
        x: ``(Bt, L, H, P)`` inputs; dt: ``(Bt, L, H)`` step sizes (>= 0);
        A: ``(H,)`` decay rates (< 0); B, C: ``(Bt, L, N)`` input and output maps;
        D: ``(H,)`` skip weights.
    Returns: ``(Bt, L, H, P)``.
    """
    batch, length, heads, width = x.shape
    state = x.new_zeros(batch, heads, width, B.shape[-1])  # (Bt, H, P, N)
    out = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)  # (Bt, H)
        inflow = (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, None, None, :]  # (Bt,H,P,N)
        state = decay[..., None, None] * state + inflow
        out.append((state * C[:, t, None, None, :]).sum(-1) + D[:, None] * x[:, t])  # (Bt,H,P)
    return torch.stack(out, dim=1)


def scan_chunked(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, chunk: int = CHUNK
) -> Tensor:
    """``scan_reference``'s result in chunks of ``chunk`` tokens (same arguments)."""
    y, _final = _scan_piece(x, dt, A, B, C, None, chunk)
    return y + D[:, None] * x


def scan_from(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor,
    initial: Tensor | None,
    chunk: int = CHUNK,
) -> tuple[Tensor, Tensor]:
    """``scan_chunked``'s result starting from state ``initial`` ``(Bt, H, N, P)`` (None:
    zero), and the state after the last token ``(Bt, H, N, P)``: scanning a sequence in
    pieces, each from the state the one before left, gives the whole sequence's scan."""
    y, final = _scan_piece(x, dt, A, B, C, initial, chunk)
    return y + D[:, None] * x, final


def selective_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor) -> Tensor:
    """``scan_reference``'s result, the fastest way this device has (same arguments)."""
    fused = _fused_kernel() if x.is_cuda else None
    if fused is not None:
        return fused(x, dt, A, B, C, D)
    return scan_chunked(x, dt, A, B, C, D)


def has_fused_kernel(device: torch.device) -> bool:
    """Whether ``selective_scan`` runs ``mamba_ssm``'s kernel on ``device``."""
    return device.type == "cuda" and _fused_kernel() is not None


def _scan_piece(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, initial: Tensor | None, chunk: int
) -> tuple[Tensor, Tensor]:
    """The scan without its skip term, from state ``initial`` ``(Bt, H, N, P)`` (None: zero).

    Returns ``y`` ``(Bt, L, H, P)`` and the state after the last token ``(Bt, H, N, P)``.
    Computed head-major, ``(Bt, H, c, T, .)``, so that every product below is a batched
    matrix product on contiguous memory.
    """
    batch, length, heads, width = x.shape
    pad = -length % chunk
    if pad:  # dt = 0 and x = 0: the padding neither decays nor feeds the state
        x, dt, B, C = (F.pad(v, (0, 0) * (v.dim() - 2) + (0, pad)) for v in (x, dt, B, C))
    n = x.shape[1] // chunk
    dt = dt.permute(0, 2, 1).reshape(batch, heads, n, chunk)  # (Bt, H, c, T)
    inflow = x.permute(0, 2, 1, 3).reshape(batch, heads, n, chunk, width) * dt[..., None]
    B = B.view(batch, 1, n, chunk, -1)  # (Bt, 1, c, T, N): one B and C for every head
    C = C.view(batch, 1, n, chunk, -1)
    since_start = (dt * A[:, None, None]).cumsum(dim=-1)  # (Bt, H, c, T): log decay through t

    # Within each chunk: y_t = sum_{s <= t} exp(since_start_t - since_start_s) (C_t . B_s)
    # inflow_s. A difference of sums within one chunk only: its float32 error stays far
    # below the decays that matter (exp of -80 is 0 already).
    between = since_start[..., :, None] - since_start[..., None, :]  # (Bt, H, c, T, T)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=x.device).tril()
    decay = torch.exp(between.masked_fill(~causal, float("-inf")))
    mixing = decay * (C @ B.transpose(-1, -2))  # (Bt, H, c, T, T)
    y = mixing @ inflow  # (Bt, H, c, T, P)

    # What each chunk leaves in the state, then the state entering each chunk
    chunk_decay = since_start[..., -1]  # (Bt, H, c): log decay across each chunk
    to_end = torch.exp(chunk_decay[..., None] - since_start)  # (Bt, H, c, T)
    left = B.transpose(-1, -2) @ (inflow * to_end[..., None])  # (Bt, H, c, N, P)
    entering = _states_entering(torch.exp(chunk_decay), left)  # (Bt, H, c, N, P)
    if initial is not None:  # the initial state, decayed through the chunks before each
        before = chunk_decay.cumsum(dim=-1) - chunk_decay  # (Bt, H, c), exclusive
        entering = entering + torch.exp(before)[..., None, None] * initial[:, :, None]
    final = torch.exp(chunk_decay[..., -1])[..., None, None] * entering[:, :, -1] + left[:, :, -1]
    y = y + (C @ entering) * torch.exp(since_start)[..., None]  # (Bt, H, c, T, P)
    y = y.reshape(batch, heads, n * chunk, width).permute(0, 2, 1, 3)[:, :length]
    return y, final


# ---------------------------------------------------------------------- helpers
def _states_entering(decay: Tensor, left: Tensor) -> Tensor:
    """State entering each chunk, ``(Bt, H, c, N, P)``, from each chunk's total decay
    ``(Bt, H, c)`` and the state it leaves ``left`` (its own inputs only).

    ``s_{c+1} = decay_c * s_c + left_c`` with ``s_0 = 0`` is a first-order linear recurrence;
    its pairs ``(decay, left)`` compose associatively, ``(a1, b1) then (a2, b2) =
    (a1 a2, a2 b1 + b2)``. Work-efficient parallel scan (Blelloch): combine neighbours
    pairwise, scan the half-length sequence of pairs, then fill in each pair's second
    element; ``2 c`` combinations in ``2 log2(c)`` parallel steps.
    """
    count = decay.shape[-1]
    if count == 1:
        return torch.zeros_like(left)
    if count % 2:  # an identity element (no decay, nothing left) makes the length even
        decay = F.pad(decay, (0, 1), value=1.0)
        left = F.pad(left, (0, 0, 0, 0, 0, 1))
    a = decay.unflatten(-1, (-1, 2))  # (Bt, H, c/2, 2)
    b = left.unflatten(2, (-1, 2))  # (Bt, H, c/2, 2, N, P)
    first_a, second_a = a[..., 0, None, None], a[..., 1, None, None]  # (Bt, H, c/2, 1, 1)
    first_b, second_b = b[:, :, :, 0], b[:, :, :, 1]  # (Bt, H, c/2, N, P)
    pair_decay = a[..., 0] * a[..., 1]
    pair_left = second_a * first_b + second_b
    entering_pair = _states_entering(pair_decay, pair_left)  # (Bt, H, c/2, N, P)
    entering_second = first_a * entering_pair + first_b
    both = torch.stack((entering_pair, entering_second), dim=3)  # (Bt, H, c/2, 2, N, P)
    return both.flatten(2, 3)[:, :, :count]


@functools.cache
def _fused_kernel() -> Callable[..., Tensor] | None:
    """``mamba_ssm``'s CUDA/Triton chunked scan in this module's signature, if installed."""
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError:
        return None

    def fused(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor) -> Tensor:
        # one group of B and C shared by every head: (Bt, L, N) -> (Bt, L, 1, N)
        return mamba_chunk_scan_combined(x, dt, A, B[:, :, None], C[:, :, None], CHUNK, D=D)

    return fused
