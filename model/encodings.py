"""Position encodings: video-level temporal (frame step) and 2-D spatial (grid cell).

Both are the fixed sinusoids of Vaswani et al., which the paper uses for time; computing
them from the integer index (instead of a table sized to the longest video) means any
session length works and nothing needs training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn


def sinusoid(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal encoding of integer ``positions`` ``(...)`` → ``(..., dim)`` float32.

    Channel ``2i`` is ``sin(p / 10000^(2i/dim))`` and ``2i+1`` the matching cosine. Angles
    are formed in float64 so that frame numbers of hours-long sessions keep their precision.
    """
    half = dim // 2
    freqs = torch.exp(
        torch.arange(half, device=positions.device, dtype=torch.float64)
        * (-math.log(10000.0) * 2.0 / dim)
    )  # (dim/2,)
    angles = positions.to(torch.float64).unsqueeze(-1) * freqs  # (..., dim/2)
    out = torch.stack((angles.sin(), angles.cos()), dim=-1)  # (..., dim/2, 2)
    return out.flatten(-2).to(torch.float32)  # (..., dim)


class TemporalEncoding(nn.Module):
    """Video-level temporal encoding: frame step on the session timeline → ``(..., d)``."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, time_index: Tensor) -> Tensor:
        return once_per_position(time_index, lambda steps: sinusoid(steps, self.d_model))


class SpatialEncoding(nn.Module):
    """2-D spatial encoding: half of the channels encode the grid row, half the column."""

    def __init__(self, d_model: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.d_model = d_model
        self.columns = grid[1]
        self.cells = grid[0] * grid[1]
        self._table: Tensor | None = None  # every cell's encoding (cells, d), made on first use

    def forward(self, spatial_index: Tensor) -> Tensor:
        """Spatial index ``(...)`` (row-major cell number) → ``(..., d)``.

        A grid has a few cells, and every write and question encodes them: their rows are
        made once and copied (each row is its cell's own values, as computed alone)."""
        if spatial_index.is_meta:  # shapes only (FLOP counts)
            return self._cells(spatial_index)
        table = self._table
        if table is None or table.device != spatial_index.device:
            cells = torch.arange(self.cells, device=spatial_index.device)
            table = self._table = self._cells(cells)  # (cells, d)
        return table[spatial_index]  # (..., d)

    def _cells(self, spatial_index: Tensor) -> Tensor:
        rows = torch.div(spatial_index, self.columns, rounding_mode="floor")
        cols = spatial_index % self.columns
        half = self.d_model // 2
        return torch.cat((sinusoid(rows, half), sinusoid(cols, half)), dim=-1)  # (..., d)


def once_per_position(positions: Tensor, encode: Callable[[Tensor], Tensor]) -> Tensor:
    """``encode(positions)`` ``(..., d)``, computed once per distinct position and copied:
    a memory's 4,352 candidates hold 16 grid cells and a few hundred frame steps, and the
    float64 sines were a sixth of a write. The same values: each is its position's own."""
    if positions.is_meta:  # shapes only (FLOP counts): unique has no meta kernel
        return encode(positions)
    distinct, where = torch.unique(positions, return_inverse=True)  # (u,), (...)
    return encode(distinct)[where]  # (u, d) -> (..., d)
