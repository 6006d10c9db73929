"""Each backbone channel's mean and spread over a set of videos' tokens.

What ``TokenProjection`` standardises with (``ModelConfig.token_standardisation``): fit
once on the training videos, then a fixed part of the checkpoint, like a layer norm's
statistics that do not depend on the token.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

#: A channel's spread is at least this share of the median channel's: a channel that
#: barely moves over the training tokens is not blown up into noise.
SPREAD_FLOOR = 1e-2


def channel_statistics(videos: Iterable[Tensor]) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation ``(C,)`` float32 of every token of ``videos``, each
    ``(..., C)`` (a video's ``(N, S, C)``); spreads are floored at ``SPREAD_FLOOR`` of
    the median one."""
    count = 0
    total: Tensor | None = None
    squares: Tensor | None = None
    for tokens in videos:
        rows = tokens.detach().reshape(-1, tokens.shape[-1]).to(torch.float64)  # (n, C)
        if total is None or squares is None:
            total, squares = rows.sum(dim=0), rows.square().sum(dim=0)
        else:
            total, squares = total + rows.sum(dim=0), squares + rows.square().sum(dim=0)
        count += rows.shape[0]
    if total is None or squares is None or count < 2:
        raise ValueError("Channel statistics need at least two tokens.")
    mean = total / count
    variance = ((squares - count * mean.square()) / (count - 1)).clamp_min(0.0)
    std = variance.sqrt()
    floor = SPREAD_FLOOR * float(std.median())
    if floor <= 0:
        raise ValueError("Channel statistics need tokens that vary.")
    return mean.float(), std.clamp_min(floor).float()
