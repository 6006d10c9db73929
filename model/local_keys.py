"""The decoder's cross-attention when each step reads only the memory near it in time.

With ``decoder_time_radius`` r >= 0, window step t reads the memory tokens whose frame step
is within r of t, and the query's own tokens (object image, activity). As a dense
``(N, L, K)`` mask over all ``K = m + q`` encoded tokens that costs ``L * K`` per query
and layer although a step reads at most ``(2 r + 1) * S`` memory tokens (S per frame).

``LocalKeys`` gives each block of ``BLOCK`` consecutive steps just the keys it can read:
the memory tokens in time order (those near a block are one contiguous run of them),
followed by the query's own tokens, with a small mask that says which step reads which.
The attention is then the same function (the same keys, the same masked softmax), over a
few dozen keys a step instead of thousands; only the order of float additions differs.
Used in inference; training keeps the dense mask (``EncoderDecoder.cross_mask``).

``LocalKeys.band`` gives the decoder's self-attention the same shape of keys when each
step reads only the steps near it (``decoder_self_radius``), in training and inference.

Shapes: N queries, L steps (padded to whole blocks: ``blocks * BLOCK``), m memory slots,
q query tokens, nb = ``blocks``, R keys of the widest block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

#: Steps per block: small enough that a block's run of memory tokens stays short even where
#: the sampler kept a whole frame at every step, large enough to keep the batch few.
BLOCK = 16


@dataclass(frozen=True)
class LocalKeys:
    """Which encoded tokens each block of steps reads.

    Attributes:
        index: ``(N * nb, R)`` positions among the encoded tokens: the block's run of
            memory tokens (padded by repeating a position; the mask hides the padding),
            then the query's own tokens.
        mask: ``(N * nb, BLOCK, R)`` bool, True where the step may read the key.
        steps: L, the real (unpadded) number of steps.
        rows: ``(N, U)`` positions of every encoded token some step of the query reads
            (all its blocks' runs, one run in time order, then its own tokens); only these
            rows of the encoder's last layer are ever read.
        row_index: ``index`` as positions within ``rows``.
    """

    index: Tensor
    mask: Tensor
    steps: int
    rows: Tensor
    row_index: Tensor
    # ``additive_mask`` by dtype, shared with ``within_rows``' copy
    _additive: dict[torch.dtype, Tensor] = field(default_factory=dict, compare=False, repr=False)
    band_radius: int = -1  # ``band``'s radius: its keys are read in place (``keys``)

    @property
    def blocks(self) -> int:
        return self.mask.shape[0]

    @classmethod
    def near(
        cls, time_index: Tensor, valid: Tensor, steps: Tensor, radius: int, own: Tensor
    ) -> LocalKeys:
        """Keys of ``steps`` ``(N, L)`` among memory tokens at ``time_index`` ``(N, m)``
        (``valid`` ``(N, m)``), ``radius`` steps either side, and the query's own tokens
        ``own`` ``(N, q)`` bool (True: readable from every step; they follow the memory).

        Two readers: the decoder's cross-attention (``steps``: a window's steps, reading
        the memory near each; ``EncoderDecoder.cross_keys``) and the memory encoder in
        inference (``steps``: the memory's own tokens' steps, each reading the tokens near
        it; ``q = 0``; ``EncoderDecoder._encode_near``)."""
        n, length = steps.shape
        m = time_index.shape[1]
        device = steps.device
        pad = -length % BLOCK
        if pad:  # padded steps repeat the last one: they read something, their output is unused
            steps = torch.cat((steps, steps[:, -1:].expand(-1, pad)), dim=1)
        blocks = steps.shape[1] // BLOCK
        by_block = steps.view(n, blocks, BLOCK)  # (N, nb, BLOCK)

        # memory tokens in time order; empty slots after every real one
        far = torch.iinfo(torch.int64).max
        times = torch.where(valid, time_index.to(torch.int64), far)
        if bool((times[:, 1:] >= times[:, :-1]).all()):  # in time order already (answers')
            sorted_times, order = times, torch.arange(m, device=device).expand(n, -1)
        else:
            sorted_times, order = torch.sort(times, dim=1, stable=True)  # (N, m)
        lowest = by_block.amin(-1) - radius  # (N, nb): the earliest step any step reads
        highest = by_block.amax(-1) + radius
        first = torch.searchsorted(sorted_times, lowest)  # (N, nb)
        count = torch.searchsorted(sorted_times, highest, right=True) - first  # (N, nb)
        width = max(int(count.max()), 1)

        offsets = torch.arange(width, device=device)
        run = (first[..., None] + offsets).clamp(max=m - 1)  # (N, nb, W) in time order
        inside = offsets < count[..., None]  # (N, nb, W)
        memory_keys = order.gather(1, run.view(n, -1)).view(n, blocks, width)  # (N, nb, W)
        key_times = sorted_times.gather(1, run.view(n, -1)).view(n, blocks, 1, width)
        near = (key_times - by_block[..., None]).abs() <= radius  # (N, nb, BLOCK, W)
        near &= inside[:, :, None, :]

        q = own.shape[1]
        own_keys = (m + torch.arange(q, device=device)).expand(n, blocks, q)
        own_mask = own[:, None, None, :].expand(n, blocks, BLOCK, q)
        index = torch.cat((memory_keys, own_keys), dim=-1).reshape(n * blocks, width + q)
        mask = torch.cat((near, own_mask), dim=-1).reshape(n * blocks, BLOCK, width + q)

        # the union of a query's runs: its blocks' steps ascend, so their runs do too
        start = first[:, :1]  # (N, 1)
        span = max(int((first[:, -1:] + count[:, -1:] - start).max()), 1)
        union = (start + torch.arange(span, device=device)).clamp(max=m - 1)  # (N, U_m)
        rows = torch.cat((order.gather(1, union), own_keys[:, 0]), dim=-1)  # (N, U_m + q)
        # a query after every memory token starts its runs one past the last slot (start =
        # m, runs clamped to m - 1): they read nothing, and index the union's first row
        within = (run - start[..., None]).clamp(min=0, max=span - 1)  # (N, nb, W)
        own_within = (span + torch.arange(q, device=device)).expand(n, blocks, q)
        row_index = torch.cat((within, own_within), dim=-1).reshape(n * blocks, width + q)
        return cls(index, mask, length, rows, row_index)

    @classmethod
    def band(cls, real: Tensor, radius: int) -> LocalKeys:
        """Self-attention keys of a window's steps where step t reads the steps within
        ``radius`` of it: block b reads the ``BLOCK + 2 radius`` steps around it.

        ``real`` ``(N, L)`` bool marks real steps (a batch pads shorter windows); a real
        step reads real steps only, and every step reads itself, so no row is left without
        a key. The same function as the dense ``(N, L, L)`` mask
        ``|t - u| <= radius and (real[u] or u == t)``, at ``BLOCK + 2 radius`` keys a step
        instead of L.
        """
        n, length = real.shape
        device = real.device
        blocks = -(-length // BLOCK)
        width = BLOCK + 2 * radius
        first = torch.arange(blocks, device=device) * BLOCK - radius  # (nb,)
        keys = first[:, None] + torch.arange(width, device=device)  # (nb, W), may leave [0, L)
        # padded rows of the last block are its last step again, as ``split_steps`` pads
        step = torch.arange(blocks * BLOCK, device=device).clamp(max=length - 1)
        step = step.view(blocks, BLOCK)  # (nb, BLOCK)
        index = keys.clamp(0, length - 1)  # (nb, W)
        near = (keys[:, None, :] - step[:, :, None]).abs() <= radius  # (nb, BLOCK, W)
        near &= ((keys >= 0) & (keys < length))[:, None, :]
        itself = keys[:, None, :] == step[:, :, None]  # (nb, BLOCK, W)
        key_real = real[:, index.view(-1)].view(n, blocks, 1, width)  # (N, nb, 1, W)
        mask = near & (key_real | itself)  # (N, nb, BLOCK, W)
        flat_index = index.expand(n, -1, -1).reshape(n * blocks, width)
        rows = torch.arange(length, device=device).expand(n, -1)
        mask = mask.reshape(n * blocks, BLOCK, width)
        return cls(flat_index, mask, length, rows, flat_index, band_radius=radius)

    def within_rows(self) -> LocalKeys:
        """The same keys for a context of just ``rows`` ``(N, U, c)``."""
        return LocalKeys(
            self.row_index, self.mask, self.steps, self.rows, self.row_index, self._additive
        )

    def additive_mask(self, dtype: torch.dtype) -> Tensor:
        """``mask`` as attention adds it to the scores, ``(N * nb, 1, BLOCK, R)``: 0 where a
        step reads a key, -inf where not; made once for every layer that reads these keys.

        ``scaled_dot_product_attention`` turns a boolean mask into exactly this on every
        call (zeros, -inf where False), so the scores are the same bits; the decoder's
        layers read one ``LocalKeys`` each way, and making it once per layer and call was
        a fifth of their attention's time.
        """
        found = self._additive.get(dtype)
        if found is None:
            zeros = torch.zeros(self.mask.shape, dtype=dtype, device=self.mask.device)
            found = zeros.masked_fill_(~self.mask, float("-inf"))[:, None]
            self._additive[dtype] = found
        return found

    def keys(self, context: Tensor) -> Tensor:
        """Each block's keys ``(N * nb, R, c)`` of ``context`` ``(N, K, c)``."""
        if self.band_radius >= 0 and not context.requires_grad:  # training: copies, below
            return self._band_keys(context)
        n, k, channels = context.shape
        per_query = self.blocks // n
        rows = torch.arange(n, device=context.device).repeat_interleave(per_query) * k
        flat = (self.index + rows[:, None]).reshape(-1)  # positions in (N * K)
        return (
            context.reshape(n * k, channels).index_select(0, flat).view(self.blocks, -1, channels)
        )

    def _band_keys(self, context: Tensor) -> Tensor:
        """``keys`` of a ``band``: block b of a query reads its steps b * BLOCK - r on, so
        the queries' steps laid end to end (each padded to its blocks, r rows of zeros
        before the first and after the last) hold every block's keys as one stretch, a
        block further on for each block: read in place (a view), not copied per block.

        Where a block's keys leave its query's steps the view reads zeros or a neighbour's
        steps, where ``index`` reads its edge step again: the mask hides those keys either
        way (they add exact zeros), so attention sees the same numbers.
        """
        n, length, channels = context.shape
        r, padded = self.band_radius, self.blocks // n * BLOCK  # steps a query's blocks hold
        width = BLOCK + 2 * r
        laid = context.new_empty(r + n * padded + r, channels)
        laid[:r].zero_()
        laid[r + n * padded :].zero_()
        steps = laid[r : r + n * padded].view(n, padded, channels)
        steps[:, :length] = context
        steps[:, length:].zero_()
        return laid.as_strided((self.blocks, width, channels), (BLOCK * channels, channels, 1))

    def split_steps(self, x: Tensor) -> Tensor:
        """``x`` ``(N, L, c)`` as blocks ``(N * nb, BLOCK, c)`` (padded by its last step)."""
        n, length, channels = x.shape
        pad = self.blocks // n * BLOCK - length
        if pad:
            x = torch.cat((x, x[:, -1:].expand(-1, pad, -1)), dim=1)
        return x.reshape(self.blocks, BLOCK, channels)

    def join_steps(self, x: Tensor, n: int) -> Tensor:
        """Blocks ``(N * nb, BLOCK, c)`` back to ``(N, L, c)``."""
        return x.reshape(n, -1, x.shape[-1])[:, : self.steps]
