"""The neural sampler's scoring network: one score per memory or clip token.

Paper: "we pass the m + k tokens through a transformer encoder followed by a MLP layer that
outputs the scores", with 2-D spatial and video-level temporal position encodings. Which
tokens are kept (exact top-m, relaxed in training) is ``model.relaxation``'s job and the
writing itself ``model.writers``'.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.encodings import SpatialEncoding, TemporalEncoding
from model.layers import MLP, Encoder, TokenProjection, inverse_permutation, take_rows
from model.mamba import scan_order


class NeuralSampler(nn.Module):
    """Encoder (attention or Mamba, ``cfg.mixer``) + MLP: scores of candidate tokens
    ``(B, n, C)`` → ``(B, n)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.project = TokenProjection(cfg)
        self.spatial = SpatialEncoding(cfg.d_model, cfg.grid)
        self.temporal = TemporalEncoding(cfg.d_model)
        self.encoder = Encoder(cfg, cfg.sampler_layers)
        self.score = MLP(cfg.d_model, cfg.d_model, 1, cfg.mlp_layers)
        self.cells = cfg.tokens_per_frame
        self.window = cfg.sampler_window  # -1: attention over all candidates

    def forward(
        self, tokens: Tensor, time_index: Tensor, spatial_index: Tensor, valid: Tensor
    ) -> Tensor:
        """Scores ``(B, n)`` of candidates.

        Args:
            tokens: ``(B, n, C)`` memory and clip tokens in backbone space.
            time_index: ``(B, n)`` frame steps; spatial_index: ``(B, n)`` grid cells.
            valid: ``(B, n)`` bool; invalid tokens are hidden from attention and their
                scores are meaningless (the selection masks them).
        """
        x = self.inputs(tokens, time_index, spatial_index)  # (B, n, d)
        return self.score_inputs(x, time_index, spatial_index, valid)

    def inputs(self, tokens: Tensor, time_index: Tensor, spatial_index: Tensor) -> Tensor:
        """Each candidate's input ``(B, n, d)``: its token projected to the model width plus
        its position encodings, a function of that candidate alone."""
        return self.project(tokens) + self.spatial(spatial_index) + self.temporal(time_index)

    def inputs_in_chunks(
        self, tokens: Tensor, time_index: Tensor, spatial_index: Tensor, rows: int
    ) -> Tensor:
        """``inputs``, each session's candidates ``rows`` at a time (the last chunk padded):
        every matrix product has one shape, so a slot's input has the same bits whether it
        was computed with its clip's ``rows`` tokens or with a restored memory's others
        (a kernel may round differently with the number of rows it multiplies)."""
        b, n = time_index.shape
        pad = -n % rows
        if pad:
            tokens = torch.cat((tokens, tokens.new_zeros(b, pad, tokens.shape[-1])), dim=1)
            time_index = torch.cat((time_index, time_index.new_zeros(b, pad)), dim=1)
            spatial_index = torch.cat((spatial_index, spatial_index.new_zeros(b, pad)), dim=1)
        chunks = [
            self.inputs(tokens[i : i + 1, j : j + rows], time_index[i : i + 1, j : j + rows],
                        spatial_index[i : i + 1, j : j + rows])
            for i in range(b)
            for j in range(0, n + pad, rows)
        ]  # fmt: skip
        return torch.cat(chunks, dim=1).view(b, n + pad, -1)[:, :n]  # (B, n, d)

    def score_inputs(
        self, x: Tensor, time_index: Tensor, spatial_index: Tensor, valid: Tensor
    ) -> Tensor:
        """Scores ``(B, n)`` of candidates whose ``inputs`` are ``x`` ``(B, n, d)``."""
        # A session with no valid token at all would make attention rows all -inf (NaN);
        # let it attend to everything instead: its scores are masked anyway.
        attend = valid | ~valid.any(dim=-1, keepdim=True)  # (B, n)
        if self.window > 0:
            return self.score(self._in_blocks(x, attend)).squeeze(-1)  # (B, n)
        order = scan_order(time_index, spatial_index, self.cells)  # read by a Mamba mixer
        x = self.encoder(x, attend, order)  # (B, n, d)
        return self.score(x).squeeze(-1)  # (B, n, 1) -> (B, n)

    def _in_blocks(self, x: Tensor, attend: Tensor) -> Tensor:
        """The encoder with attention in blocks of ``window`` candidates, valid ones first.

        Candidates come in time order (the memory's valid slots, its empty ones, then the
        clip); moving the empty slots last (a stable sort) makes each block a stretch of
        neighbouring moments, so a block's keys are the tokens near it in time.
        """
        b, n, d = x.shape
        if bool(attend.all()):  # a full memory: every candidate is real, in order already
            return self.encoder(x, attend, window=self.window)
        first = torch.sort((~attend).to(torch.uint8), dim=-1, stable=True).indices  # (B, n)
        # A young memory's empty slots are blocks that no real candidate reads: only the
        # blocks up to the last real one are computed (at least four, which keeps the block
        # path). Each block's attention has the same shape either way and the other layers
        # work row by row, so the real candidates' scores are the same bits; the blocks
        # left out come out as zeros, and an empty candidate is never chosen by its score
        # (``exact_top_k``).
        real = int(attend.sum(dim=-1).max())
        w = self.window
        used = min(n, max(-(-real // w) * w, 4 * w))
        rows = first[:, :used]  # (B, used)
        y = self.encoder(take_rows(x, rows), attend.gather(1, rows), window=w)  # (B, used, d)
        if used < n:
            y = torch.cat((y, y.new_zeros(b, n - used, d)), dim=1)
        return take_rows(y, inverse_permutation(first))  # back to the candidates' order
