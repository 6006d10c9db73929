"""The query encoder-decoder: memory + query inputs in, one vector per window step out.

Encoder input per query kind (paper, Sec. "Encoder-Decoder"):

- activity query: memory tokens multiplied by the object image's tokens, plus the object
  tokens: ``m + S`` tokens;
- object query: memory tokens plus the activity token: ``m + 1``;
- time query: memory tokens multiplied by the object tokens, plus the object tokens and
  the activity token: ``m + S + 1``.

The multiplication pairs each memory token with the object token of the same grid cell
(by spatial index), which is what survives sampling (the paper multiplies frame by frame
when every frame is whole); we multiply by ``1 + object token`` so the memory token's own
content survives next to the match. Decoder queries are the temporal encodings of the
window's steps, so the decoder answers "what happened at step t" for each step of the
window; with ``decoder_time_radius`` r >= 0, step t reads only the memory tokens within r
steps of t (and the query's own tokens) instead of learning that from the encodings.

With ``object_match_dim`` > 0 (deviation), every memory token also gets its cosine
similarity to the query's catalog image (``model.product_match``), mapped to the model width
and added: a product never seen in training is then recognised by its picture, where the
cell-by-cell product alone must learn each product's code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.encodings import SpatialEncoding, TemporalEncoding
from model.layers import Decoder, Encoder, TokenProjection, take_rows
from model.local_keys import LocalKeys
from model.mamba import scan_order
from model.memory import Memory
from model.product_match import ProductMatch


@dataclass(frozen=True)
class ObjectInputs:
    """What the answer reads of the questions' catalog images (``EncoderDecoder.object_inputs``).

    Attributes:
        projected: ``(N, S, d)`` each image's tokens in the model width (``project``).
        pooled: ``(N, C)`` each image's tokens averaged over its cells, for the product
            match (``ProductMatch.images`` embeds them).
    """

    projected: Tensor
    pooled: Tensor

    @classmethod
    def stack(cls, each: Sequence[ObjectInputs]) -> ObjectInputs:
        """One image's inputs each (batches of one) as one batch."""
        return cls(torch.cat([x.projected for x in each]), torch.cat([x.pooled for x in each]))


class EncoderDecoder(nn.Module):
    """Transformer encoder over memory + query inputs; decoder over the window's steps."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.project = TokenProjection(cfg)  # shared by memory and object-image tokens
        # The paper feeds a one-hot activity vector to a linear layer: an embedding table.
        self.activity_embed = nn.Embedding(cfg.num_activities, cfg.d_model)
        self.spatial = SpatialEncoding(cfg.d_model, cfg.grid)
        self.temporal = TemporalEncoding(cfg.d_model)
        self.encoder = Encoder(cfg, cfg.encoder_layers)
        self.decoder = Decoder(cfg, cfg.decoder_layers)
        self.time_radius = cfg.decoder_time_radius
        self.activity_in_every_token = cfg.activity_in_every_token
        self.width = cfg.d_model
        self.cells = cfg.tokens_per_frame
        self.match: ProductMatch | None = None
        if cfg.object_match_dim:
            self.match = ProductMatch(cfg.backbone_channels, cfg.object_match_dim)
            self.match_feature = nn.Linear(1, cfg.d_model)  # similarity -> a d-vector
        self.fuse_in_decoder = cfg.query_fusion == "decoder"
        self.memory_radius = cfg.memory_encoder_radius
        if self.fuse_in_decoder:  # the decoder's keys: encoded memory x question, normalized
            self.fused_norm = nn.LayerNorm(cfg.d_model)
        self.glance: Decoder | None = None
        if cfg.glance_layers:  # the question's own tokens read the whole fused memory
            self.glance = Decoder(
                dataclasses.replace(cfg, decoder_self_radius=-1), cfg.glance_layers
            )

    def project_memory(self, memory: Memory) -> Memory:
        """The same memory with tokens projected to the model width: ``(B, m, d)``, or
        ``(B, m, d + E)`` with the product-match embeddings after the ``d`` channels. With
        ``query_fusion == "decoder"`` the ``d`` channels are already the encoder's output.

        Query-independent: done once per memory (``LongVMNet.prepare``), before the
        per-query gather, so that many queries on one session share it.
        """
        tokens = self.project(memory.tokens)  # (B, m, d)
        if self.fuse_in_decoder:
            tokens = self.encode_memory(tokens, memory)
        if self.match is not None:
            tokens = torch.cat((tokens, self.match.tokens(memory.tokens)), dim=-1)
        return Memory(
            tokens,
            memory.time_index,
            memory.spatial_index,
            memory.valid,
            memory.frames_seen,
        )

    def encode_memory(self, tokens: Tensor, memory: Memory) -> Tensor:
        """The encoder over a memory's projected ``tokens`` ``(B, m, d)`` alone: ``(B, m, d)``.

        A memory with no valid slot yet lets its slots attend to each other (attention
        over no key is undefined); nothing reads them, the decoder's keys are valid slots.
        With ``memory_encoder_radius`` r >= 0 a token attends to the valid tokens within r
        steps of its own (and itself): in training ``(B, m, m)`` keys, computed once per
        memory; in inference the same keys gathered per block of tokens (``_encode_near``).
        """
        x = tokens + self.spatial(memory.spatial_index) + self.temporal(memory.time_index)
        if self.memory_radius >= 0 and not self.training and memory.in_time_order():
            return self._encode_near(x, memory)
        keys = memory.valid | ~memory.valid.any(dim=1, keepdim=True)  # (B, m)
        if self.memory_radius >= 0:  # a token reads the valid tokens near it in time
            gap = (memory.time_index[:, :, None] - memory.time_index[:, None, :]).abs()
            itself = torch.eye(keys.shape[1], dtype=torch.bool, device=keys.device)
            keys = ((gap <= self.memory_radius) & keys[:, None, :]) | itself  # (B, m, m)
        order = scan_order(memory.time_index, memory.spatial_index, self.cells)
        return self.encoder(x, keys, order)

    def _encode_near(self, x: Tensor, memory: Memory) -> Tensor:
        """``encode_memory`` with ``memory_encoder_radius`` r in inference: each session's
        valid tokens (a prefix, in time order) read only the keys they may, per block of
        16 tokens over the run of tokens within r steps of the block (``LocalKeys.near``):
        a few dozen to a few hundred keys a token instead of ``m``. The same keys and
        softmax as the dense ``(B, m, m)`` mask, so the same output up to float rounding,
        for the valid tokens; empty slots come out as zeros (nothing reads them).
        ``x`` ``(B, m, d)`` -> ``(B, m, d)``."""
        out = torch.zeros_like(x)
        for b, real in enumerate(memory.valid.sum(dim=1).tolist()):
            if not real:
                continue
            steps = memory.time_index[b : b + 1, :real]  # (1, v), ascending
            near = LocalKeys.near(
                steps,
                torch.ones_like(steps, dtype=torch.bool),
                steps,
                self.memory_radius,
                torch.ones(1, 0, dtype=torch.bool, device=x.device),  # no tokens of a query
            )
            out[b, :real] = self.encoder(x[b : b + 1, :real], near)[0]
        return out

    def forward(
        self,
        memory: Memory,
        steps: Tensor,
        step_mask: Tensor,
        object_tokens: Tensor | ObjectInputs | None = None,
        activity: Tensor | None = None,
    ) -> Tensor:
        """Decoded window steps ``(N, L, d)`` for N queries.

        Args:
            memory: projected memory, one session per query: tokens ``(N, m, d)``.
            steps: ``(N, L)`` session steps of each window (padded rows past its length).
            step_mask: ``(N, L)`` bool, True for real steps.
            object_tokens: ``(N, S, C)`` backbone tokens of each query's object image, or
                what the answer reads of them (``object_inputs``), made once per image.
            activity: ``(N,)`` activity class of each query.
        """
        n = steps.shape[0]
        x = memory.tokens[..., : self.width]  # (N, m, d)
        keys = memory.tokens[..., self.width :]  # (N, m, E): product-match embeddings, or empty
        parts: list[Tensor] = []
        attend: list[Tensor] = [memory.valid]  # (N, m): invalid slots are never attended to
        # A Mamba mixer reads the query's own tokens first (negative keys: object cells in
        # grid order, then the activity), then the memory in (time, cell) order
        order: list[Tensor] = [scan_order(memory.time_index, memory.spatial_index, self.cells)]
        if object_tokens is not None:
            inputs = object_tokens
            if not isinstance(inputs, ObjectInputs):
                inputs = self.object_inputs(inputs)
            objects = inputs.projected  # (N, S, d)
            # memory token at cell s x (1 + object token at cell s): the match, and what the
            # token itself says (deviation: the paper multiplies, which hides the latter)
            # (1 + the S cells' tokens, then copied to the m rows: the same numbers)
            x = x * take_rows(1.0 + objects, memory.spatial_index)  # (N, m, d)
            if self.match is not None:
                images = self.match.tokens(inputs.pooled)  # (N, E): ``ProductMatch.images``
                similarity = ProductMatch.similarity(keys, images)
                x = x + self.match_feature(similarity[..., None])  # (N, m, 1) -> (N, m, d)
            grid = torch.arange(objects.shape[1], device=x.device)
            parts.append(objects + self.spatial(grid))
            attend.append(torch.ones(n, objects.shape[1], dtype=torch.bool, device=x.device))
            order.append((grid - objects.shape[1] - 1).expand(n, -1))
        if not self.fuse_in_decoder:  # the encoded memory has its positions already
            x = x + self.spatial(memory.spatial_index) + self.temporal(memory.time_index)
        asked = None if activity is None else self.activity_embed(activity)[:, None]  # (N, 1, d)
        if asked is not None and self.activity_in_every_token:
            x = x + asked  # onto each of the m rows
        parts.insert(0, x)
        if asked is not None:
            parts.append(asked)
            attend.append(torch.ones(n, 1, dtype=torch.bool, device=x.device))
            order.append(torch.full((n, 1), -1, dtype=torch.int64, device=x.device))
        src = torch.cat(parts, dim=1)  # (N, m [+ S] [+ 1], d)
        src_mask = torch.cat(attend, dim=1)  # never all False: the query's own tokens are real
        read = self.cross_keys(memory, steps, src_mask)
        if self.fuse_in_decoder:  # no encoder per question: the decoder reads src itself
            if self.glance is not None:
                src = self.glanced(src, memory.valid)
            if isinstance(read, LocalKeys):  # just the rows some step reads
                if not _every_row(read.rows, src.shape[1]):  # (the window's slots: all)
                    src = take_rows(src, read.rows)
                read = read.within_rows()
            encoded = self.fused_norm(src)
        elif isinstance(read, LocalKeys):  # only the tokens some step reads are encoded to the end
            encoded = self.encoder.forward_rows(src, src_mask, torch.cat(order, 1), read.rows)
            read = read.within_rows()
        else:
            encoded = self.encoder(src, src_mask, torch.cat(order, dim=1))
        queries = self.temporal(steps)  # (N, L, d)
        window = None  # a lone question's window of real steps (``Decoder.forward``)
        if n == 1 and bool(step_mask.all()):
            window = (int(steps[0, 0]), steps.shape[1])
        return self.decoder(queries, encoded, step_mask, read, window=window)

    def object_inputs(self, object_tokens: Tensor) -> ObjectInputs:
        """What ``forward`` reads of catalog images' backbone tokens ``(N, S, C)``: each
        row is its image's alone (a layer norm and a linear map per token, a mean per
        image), so one image's may be made once and stacked with others' later."""
        return ObjectInputs(self.project(object_tokens), object_tokens.mean(dim=1))

    def glanced(self, src: Tensor, valid: Tensor) -> Tensor:
        """``src`` ``(N, m + q, d)`` with its last q rows (the question's own tokens)
        replaced by what they read from the whole memory (its valid rows, normalized)."""
        assert self.glance is not None
        m = valid.shape[1]
        memory = self.fused_norm(src[:, :m])  # (N, m, d)
        keys = valid | ~valid.any(dim=1, keepdim=True)  # (N, m): never all False
        own = self.glance(src[:, m:], memory, None, keys)  # (N, q, d)
        return torch.cat((src[:, :m], own), dim=1)

    def cross_keys(self, memory: Memory, steps: Tensor, src_mask: Tensor) -> Tensor | LocalKeys:
        """What each decoder step reads: in training the dense mask (``cross_mask``); in
        inference with a time radius, the same keys gathered per block of steps
        (``model.local_keys``), a few dozen a step instead of the whole memory."""
        if self.time_radius < 0 or self.training:
            return self.cross_mask(memory, steps, src_mask)
        m = memory.tokens.shape[1]
        return LocalKeys.near(
            memory.time_index, src_mask[:, :m], steps, self.time_radius, src_mask[:, m:]
        )

    def cross_mask(self, memory: Memory, steps: Tensor, src_mask: Tensor) -> Tensor:
        """What each decoder step may read: ``(N, K)`` for all steps alike, or ``(N, L, K)``
        when ``decoder_time_radius`` keeps step t to the memory tokens near t.

        The query's own tokens (object, activity) stay readable from every step, so a step
        with no memory token near it still has something to attend to.
        """
        if self.time_radius < 0:
            return src_mask
        m = memory.tokens.shape[1]
        gap = (memory.time_index[:, None, :] - steps[:, :, None]).abs()  # (N, L, m)
        near = (gap <= self.time_radius) & src_mask[:, None, :m]  # (N, L, m)
        rest = src_mask[:, None, m:].expand(-1, steps.shape[1], -1)  # (N, L, K - m)
        return torch.cat((near, rest), dim=-1)  # (N, L, K)


def _every_row(rows: Tensor, count: int) -> bool:
    """Whether ``rows`` ``(N, U)`` is every one of ``count`` rows, in order, for each query:
    a memory already cut to the questions' windows (``LongVMNet._query_memory``) is read
    whole, and taking its rows would copy it as it is."""
    if rows.shape[1] != count:
        return False
    return bool((rows == torch.arange(count, device=rows.device)).all())
