"""Small building blocks shared by the sampler and the encoder-decoder."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model import weight_versions
from model.config import ModelConfig
from model.local_keys import LocalKeys


class MLP(nn.Module):
    """``layers`` linear layers with ReLU between them; ``layers=1`` is one linear map."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks.append(nn.Linear(dims[i], dims[i + 1]))
            if i < layers - 1:
                blocks.append(nn.ReLU())
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TokenProjection(nn.Module):
    """Backbone space ``(..., C)`` → transformer width ``(..., d)``.

    The memory stays in backbone space (C = 768 for the paper's Swin-V2); the layer norm
    puts every backbone, pretrained or not, on one scale before the linear map. With
    ``cfg.token_standardisation`` each channel is first shifted and scaled by its
    statistics over the training tokens (``set_channel_statistics``), so that no channel
    is quiet next to the others when the layer norm divides by a token's spread.
    """

    channel_mean: Tensor | None
    channel_std: Tensor | None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.backbone_channels)
        self.linear = nn.Linear(cfg.backbone_channels, cfg.d_model)
        # (C,) each, the identity until fit; None (no state) without standardisation
        on, channels = cfg.token_standardisation, cfg.backbone_channels
        self.register_buffer("channel_mean", torch.zeros(channels) if on else None)
        self.register_buffer("channel_std", torch.ones(channels) if on else None)

    def set_channel_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Standardise channel c as ``(x - mean[c]) / std[c]`` from now on (``(C,)`` each)."""
        if self.channel_mean is None or self.channel_std is None:
            raise ValueError("This projection was built without token_standardisation.")
        if bool((std <= 0).any()) or not bool(
            torch.isfinite(mean).all() & torch.isfinite(std).all()
        ):
            raise ValueError("Channel statistics must be finite with positive spreads.")
        self.channel_mean.copy_(mean)
        self.channel_std.copy_(std)

    def forward(self, tokens: Tensor) -> Tensor:
        # A memory may be kept in float16 (half the bytes); compute in the weights' dtype.
        x = tokens.to(self.linear.weight.dtype)  # (..., C)
        if self.channel_mean is not None and self.channel_std is not None:
            x = (x - self.channel_mean.to(x.dtype)) / self.channel_std.to(x.dtype)
        return self.linear(self.norm(x))


class Attention(nn.Module):
    """Multi-head attention of ``x`` ``(B, n, d)`` over ``context`` ``(B, k, d)``.

    Uses ``scaled_dot_product_attention`` and computes the same way in training and
    inference. No dropout on the attention weights (deviation): it forces the quadratic-
    memory kernel, ~10x slower and gigabytes at 11,760 tokens on CPU; the config's dropout
    acts on the residual branches instead.
    """

    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(
        self, x: Tensor, context: Tensor, key_mask: Tensor | LocalKeys | None = None
    ) -> Tensor:
        """``key_mask`` bool, True where a context token may be attended to: ``(B, k)`` for
        every query alike or ``(B, n, k)`` per query; or ``LocalKeys``, the same thing for
        a few keys per query (``model.local_keys``)."""
        if isinstance(key_mask, LocalKeys):
            return self._local(x, context, key_mask)
        b, n, d = x.shape
        k, h = context.shape[1], self.num_heads
        q = self.query(x).view(b, n, h, d // h).transpose(1, 2)  # (B, h, n, d/h)
        kv = self.key_value(context).view(b, k, 2, h, d // h)  # (B, k, 2d) -> (B, k, 2, h, d/h)
        kv = kv.permute(2, 0, 3, 1, 4)  # (2, B, h, k, d/h): keys, values
        mask = None
        if key_mask is not None:  # heads share it: (B, 1, 1, k) or (B, 1, n, k)
            mask = key_mask[:, None, None, :] if key_mask.dim() == 2 else key_mask[:, None]
        out = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask)  # (B, h, n, d/h)
        return self.out(out.transpose(1, 2).reshape(b, n, d))  # (B, n, h, d/h) -> (B, n, d)

    def in_blocks(self, x: Tensor, key_mask: Tensor, window: int) -> Tensor:
        """Self-attention of ``x`` ``(B, n, d)`` where each block of ``window`` consecutive
        tokens reads only the ``3 * window`` tokens around it: the block before, itself and
        the one after.

        ``key_mask`` ``(B, n)`` is True for real tokens, which must come first (padding
        last). The windows stay among a session's real tokens: near its first and last
        real tokens a block reads the first or last ``3 * window`` of them, so every real
        token reads as many keys (all of them when there are at most ``3 * window``, which
        makes this ``forward(x, x, key_mask)`` for those tokens). Rows of padding read
        some real tokens (or, in a session without any, every token of their window).
        """
        b, n, d = x.shape
        width = 3 * window
        if n <= width:
            return self(x, x, key_mask)
        h, blocks = self.num_heads, -(-n // window)
        q = self.query(x)  # (B, n, d)
        if b == 1 and n % window == 0 and bool(key_mask.all()):
            return self.out(self._full_blocks(q, self.key_value(x), window))
        if pad := blocks * window - n:  # padded rows are computed and dropped
            q = torch.cat((q, q.new_zeros(b, pad, d)), dim=1)
        q = q.view(b * blocks, window, h, d // h).transpose(1, 2)  # (B * nb, h, W, d/h)
        last = (key_mask.sum(dim=-1) - width).clamp(min=0)  # (B,): the last window's start
        before = (torch.arange(blocks, device=x.device) * window - window).clamp(min=0)
        first = torch.minimum(before[None], last[:, None])  # (B, nb)
        keys = (first[..., None] + torch.arange(width, device=x.device)).view(b, -1)  # (B, nb*3W)
        kv = self.key_value(x)  # (B, n, 2d)
        kv = take_rows(kv, keys)  # (B, nb * 3W, 2d)
        kv = kv.view(b * blocks, width, 2, h, d // h)  # (B * nb, 3W, 2, h, d/h)
        kv = kv.permute(2, 0, 3, 1, 4)  # (2, B * nb, h, 3W, d/h): keys, values
        mask = key_mask.gather(1, keys).view(b * blocks, width)  # (B * nb, 3W)
        mask = (mask | ~mask.any(dim=-1, keepdim=True))[:, None, None, :]  # no row without keys
        # a full memory's blocks read only real tokens: the same scores without adding a
        # mask of zeros to them
        needed = None if bool(mask.all()) else mask
        out = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=needed)  # (B*nb, h, W, d/h)
        out = out.transpose(1, 2).reshape(b, blocks * window, d)[:, :n]
        return self.out(out)  # (B, n, d)

    def _full_blocks(self, q: Tensor, kv: Tensor, window: int) -> Tensor:
        """``in_blocks`` before its output map, for one session of real tokens filling its
        blocks (a full memory): ``q`` ``(1, n, d)``, ``kv`` ``(1, n, 2d)``.

        Block i reads the ``3 * window`` tokens from ``(i - 1) * window`` on (the first
        block the first ones, the last block the last ones), so the middle blocks' keys are
        overlapping stretches of ``kv`` read in place at a stride of one block, not copied
        three times over; the first and last blocks read theirs in a second call. Each
        block's attention is the one ``in_blocks`` computes, bit for bit.
        """
        _, n, d = q.shape
        h, width, blocks = self.num_heads, 3 * window, n // window
        q = q.view(blocks, window, h, d // h).transpose(1, 2)  # (nb, h, W, d/h)
        rows = kv[0]  # (n, 2d)
        middle = rows.as_strided((blocks - 2, width, 2 * d), (window * 2 * d, 2 * d, 1))
        middle = middle.view(blocks - 2, width, 2, h, d // h).permute(2, 0, 3, 1, 4)
        ends = torch.cat((rows[:width], rows[n - width :]))  # (2 * 3W, 2d)
        ends = ends.view(2, width, 2, h, d // h).permute(2, 0, 3, 1, 4)  # (2, 2, h, 3W, d/h)
        inner = F.scaled_dot_product_attention(q[1:-1], middle[0], middle[1])  # (nb-2, h, W, d/h)
        outer = F.scaled_dot_product_attention(q[:: blocks - 1], ends[0], ends[1])  # (2, h, W, d/h)
        out = q.new_empty(blocks, window, h, d // h)  # heads back together in one copy
        out[1:-1] = inner.transpose(1, 2)
        out[:: blocks - 1] = outer.transpose(1, 2)
        return out.view(1, n, d)

    def _local(self, x: Tensor, context: Tensor, local: LocalKeys) -> Tensor:
        """``forward`` with each block of ``x``'s rows reading only its ``local`` keys."""
        b, d, h = x.shape[0], x.shape[2], self.num_heads
        q = self.query(local.split_steps(x))  # (B * nb, BLOCK, d)
        blocks, rows = q.shape[:2]
        q = q.view(blocks, rows, h, d // h).transpose(1, 2)  # (B * nb, h, BLOCK, d/h)
        kv = local.keys(self.key_value(context))  # (B * nb, R, 2d)
        kv = kv.view(blocks, -1, 2, h, d // h).permute(2, 0, 3, 1, 4)  # (2, B * nb, h, R, d/h)
        mask = local.additive_mask(q.dtype)  # (B * nb, 1, BLOCK, R), heads share it
        out = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask)
        out = out.transpose(1, 2).reshape(blocks, rows, d)  # (B * nb, BLOCK, d)
        return self.out(local.join_steps(out, b))  # (B, n, d)


def take_rows(x: Tensor, rows: Tensor) -> Tensor:
    """``x`` ``(B, n, ...)`` at ``rows`` ``(B, U)``: ``(B, U, ...)``.

    One ``index_select`` over the flattened rows copies each row whole: ``gather`` with an
    index expanded over the channels reads an index per number (4-8x slower for a write's
    4,352 x 576 candidates), and its backward pass would keep the whole of ``x``.
    """
    b, n = x.shape[:2]
    flat = rows + torch.arange(b, device=rows.device)[:, None] * n  # (B, U)
    rest = x.shape[2:]
    return x.reshape(b * n, *rest).index_select(0, flat.reshape(-1)).view(*rows.shape, *rest)


def inverse_permutation(permutation: Tensor) -> Tensor:
    """Per row, the permutation ``(B, n)`` that undoes ``permutation`` ``(B, n)``."""
    positions = torch.arange(permutation.shape[1], device=permutation.device)
    return torch.empty_like(permutation).scatter_(1, permutation, positions.expand_as(permutation))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward block."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(cfg.d_model)
        self.attention = Attention(cfg.d_model, cfg.num_heads)
        self.norm_ffn = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: Tensor,
        key_mask: Tensor | LocalKeys | None,
        order: Tensor | None = None,
        window: int = -1,
    ) -> Tensor:
        """``window`` > 0 (with a ``key_mask``): attention in blocks (``Attention.in_blocks``);
        ``key_mask`` as ``Attention.forward`` takes it."""
        y = self.norm_attention(x)  # attention needs no order: positions are in x
        if window > 0 and isinstance(key_mask, Tensor):
            x = x + self.dropout(self.attention.in_blocks(y, key_mask, window))
        else:
            x = x + self.dropout(self.attention(y, y, key_mask))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))

    def forward_rows(self, x: Tensor, key_mask: Tensor | None, rows: Tensor) -> Tensor:
        """``forward``'s output at ``rows`` ``(B, U)`` only: ``(B, U, d)``. Every token is
        still a key; only the queries (and the feed-forward) are fewer."""
        y = self.norm_attention(x)
        x, mine = take_rows(x, rows), take_rows(y, rows)
        x = x + self.dropout(self.attention(mine, y, key_mask))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class DecoderLayer(nn.Module):
    """Pre-norm self-attention over the queries, cross-attention to the encoded tokens,
    feed-forward."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(cfg.d_model)
        self.self_attention = Attention(cfg.d_model, cfg.num_heads)
        self.norm_cross = nn.LayerNorm(cfg.d_model)
        self.cross_attention = Attention(cfg.d_model, cfg.num_heads)
        self.norm_ffn = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: Tensor,
        query_mask: Tensor | LocalKeys | None,
        encoded: Tensor,
        encoded_mask: Tensor | LocalKeys | None,
    ) -> Tensor:
        return self.read(self.attend_steps(x, query_mask), encoded, encoded_mask)

    def attend_steps(self, x: Tensor, query_mask: Tensor | LocalKeys | None) -> Tensor:
        """The self-attention over the queries, with its residual: ``(B, L, d)``."""
        y = self.norm_self(x)
        return x + self.dropout(self.self_attention(y, y, query_mask))

    def read(self, x: Tensor, encoded: Tensor, encoded_mask: Tensor | LocalKeys | None) -> Tensor:
        """The cross-attention to the encoded tokens and the feed-forward, after
        ``attend_steps``."""
        x = x + self.dropout(self.cross_attention(self.norm_cross(x), encoded, encoded_mask))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class Encoder(nn.Module):
    """``layers`` encoder layers and a final layer norm: ``(B, n, d)`` → ``(B, n, d)``.

    The layers mix tokens with attention or, with ``cfg.mixer == "mamba"``, with
    bidirectional selective scans (``model.mamba``), which read the tokens in ``order``.
    """

    def __init__(self, cfg: ModelConfig, layers: int) -> None:
        super().__init__()
        layer: type[nn.Module] = EncoderLayer
        if cfg.mixer == "mamba":
            from model.mamba import MambaEncoderLayer  # model.mamba builds on this module

            layer = MambaEncoderLayer
        self.layers = nn.ModuleList(layer(cfg) for _ in range(layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(
        self,
        x: Tensor,
        key_mask: Tensor | LocalKeys | None = None,
        order: Tensor | None = None,
        window: int = -1,
    ) -> Tensor:
        """``key_mask`` ``(B, n)`` True for real tokens (or ``(B, n, n)``, or ``LocalKeys``:
        attention only); ``order`` ``(B, n)`` integer scan
        order (``model.mamba.scan_order``), needed by the Mamba mixer only; ``window`` > 0:
        attention in blocks of that many tokens (``Attention.in_blocks``; attention only)."""
        for layer in self.layers:
            x = layer(x, key_mask, order, window) if window > 0 else layer(x, key_mask, order)
        return self.norm(x)

    def forward_rows(
        self, x: Tensor, key_mask: Tensor | None, order: Tensor | None, rows: Tensor
    ) -> Tensor:
        """``forward``'s output at ``rows`` ``(B, U)`` only: ``(B, U, d)``. With attention
        the last layer computes just those rows (its keys are still every token)."""
        *first, last = self.layers
        for layer in first:
            x = layer(x, key_mask, order)
        if isinstance(last, EncoderLayer):
            return self.norm(last.forward_rows(x, key_mask, rows))
        return self.norm(take_rows(last(x, key_mask, order), rows))


class Decoder(nn.Module):
    """``layers`` decoder layers and a final layer norm: queries ``(B, L, d)`` → ``(B, L, d)``.

    With ``cfg.decoder_self_radius`` r >= 0 a step's self-attention reads the steps within
    r of it only (``LocalKeys.band``): linear in the window's length instead of square.
    """

    def __init__(self, cfg: ModelConfig, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.self_radius = cfg.decoder_self_radius
        self.first_steps = FirstStepsCache()

    def forward(
        self,
        queries: Tensor,
        encoded: Tensor,
        query_mask: Tensor | None = None,
        encoded_mask: Tensor | LocalKeys | None = None,
        *,
        window: tuple[int, int] | None = None,
    ) -> Tensor:
        """``window``: (first step, steps) when ``queries`` are one question's whole window
        of real steps (their temporal encodings, ``(1, L, d)``): the first layer's
        self-attention is then a function of the window alone, kept in inference (no
        gradients; ``FirstStepsCache``) for the next question on it: every product's
        whole-session timeline (``model.timelines``) asks the same window."""
        x = queries
        steps: Tensor | LocalKeys | None = query_mask
        if self.self_radius >= 0:
            real = query_mask
            if real is None:
                real = torch.ones(queries.shape[:2], dtype=torch.bool, device=queries.device)
            steps = LocalKeys.band(real, self.self_radius)
        for i, layer in enumerate(self.layers):
            assert isinstance(layer, DecoderLayer)
            if i == 0 and window is not None and not (self.training or torch.is_grad_enabled()):
                at = (*window, self.self_radius)  # the band read depends on the radius too
                x = self.first_steps.get(
                    layer, at, x, partial(layer.attend_steps, query_mask=steps)
                )
            else:
                x = layer.attend_steps(x, steps)
            x = layer.read(x, encoded, encoded_mask)
        return self.norm(x)


class FirstStepsCache:
    """The decoder's first self-attention (with its residual) for a few windows, in
    inference: ``(1, L, d)`` by (first step, steps, self-attention radius).

    Its input is the temporal encoding of the window's steps and nothing of the question,
    so it is the same, bit for bit, for every question on the window; a whole-session
    timeline per product reads one window many times. Forgotten when the layer's weights
    change, are replaced or move (``model.weight_versions``).
    """

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[tuple[object, ...], Tensor] = OrderedDict()
        self.hits = 0

    def get(
        self,
        layer: DecoderLayer,
        window: tuple[int, ...],
        queries: Tensor,
        compute: Callable[[Tensor], Tensor],
    ) -> Tensor:
        weights = [*layer.norm_self.parameters(), *layer.self_attention.parameters()]
        key = (window, queries.dtype, queries.device, weight_versions.state(weights))
        found = self._kept.get(key)
        if found is not None:
            self.hits += 1
            self._kept.move_to_end(key)
            return found
        found = compute(queries)
        self._kept[key] = found
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return found
