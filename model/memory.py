"""The fixed-size session memory: ``m`` tokens in backbone space with their time and place.

A ``Memory`` holds a batch of sessions. Slot ``j`` of session ``b`` is a backbone token
``tokens[b, j]`` (C channels), the frame step it came from on the session timeline
(``time_index``), its grid cell (``spatial_index``) and whether the slot holds a real token
(``valid``). A memory started from nothing has fewer than ``m`` real tokens until enough
frames arrived; its shape is ``m`` all the same and invalid slots are masked downstream.

Canonical layout (what every writer returns): valid slots first, ordered by
``(time_index, spatial_index)``; invalid slots after them hold zeros. Two equal memories
are therefore bit-identical, which the recovery-by-replay of the service relies on.

A memory written by the neural sampler may carry ``features``: each slot's input to the
sampler (its token projected to the sampler's width plus its position encodings), so that
the next write projects only the new clip's tokens (projecting the 4,096 kept ones again
was a sixth of a write). They are a cache, derived from the other fields and the
sampler's weights: never saved, not compared by ``equal``, dropped where slots are made
anew (``padded_to``, ``slots_between``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from model.config import ModelConfig

_INDEX_FIELDS = ("time_index", "spatial_index", "valid", "frames_seen")
_FIELDS = ("tokens", *_INDEX_FIELDS)


@dataclass(eq=False)
class Memory:
    """Session memories of a batch.

    Attributes:
        tokens: ``(B, m, C)`` backbone-space tokens (zeros in invalid slots).
        time_index: ``(B, m)`` int64 frame step of each token at the memory FPS.
        spatial_index: ``(B, m)`` int64 grid cell of each token (row-major).
        valid: ``(B, m)`` bool, True where the slot holds a real token.
        frames_seen: ``(B,)`` int64 frames written so far; the next clip's first frame
            gets this time index.
        features: ``(B, m, d)`` the neural sampler's input for each slot, or None (see
            the module's docstring).
    """

    tokens: Tensor
    time_index: Tensor
    spatial_index: Tensor
    valid: Tensor
    frames_seen: Tensor
    features: Tensor | None = None

    def __post_init__(self) -> None:
        b, m, _ = self.tokens.shape
        for name in ("time_index", "spatial_index", "valid"):
            if tuple(getattr(self, name).shape) != (b, m):
                raise ValueError(f"Memory.{name} must have shape {(b, m)}.")
        if self.features is not None and tuple(self.features.shape[:2]) != (b, m):
            raise ValueError(f"Memory.features must have shape {(b, m)} + (d,).")
        if tuple(self.frames_seen.shape) != (b,):
            raise ValueError(f"Memory.frames_seen must have shape {(b,)}.")
        if self.valid.dtype != torch.bool:
            raise ValueError("Memory.valid must be a bool tensor.")
        for name in ("time_index", "spatial_index", "frames_seen"):
            if getattr(self, name).dtype != torch.int64:
                raise ValueError(f"Memory.{name} must be int64.")

    # ------------------------------------------------------------------ building
    @classmethod
    def empty(
        cls,
        cfg: ModelConfig,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        features: int = 0,
    ) -> Memory:
        """``batch`` sessions that saw nothing yet: ``m`` invalid slots each; ``features``
        > 0: with room for sampler inputs of that width (a block of sessions that keeps
        them, ``app.ingest.pool``)."""
        empty = cls.zeros(batch, cfg.memory_size, cfg.backbone_channels, device=device, dtype=dtype)
        if features:
            empty.features = torch.zeros(batch, cfg.memory_size, features, device=device)
        return empty

    @classmethod
    def zeros(
        cls,
        batch: int,
        m: int,
        c: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Memory:
        """Like ``empty`` with explicit sizes: ``(batch, m, c)`` zeros, every slot invalid."""
        return cls(
            tokens=torch.zeros(batch, m, c, device=device, dtype=dtype),
            time_index=torch.zeros(batch, m, device=device, dtype=torch.int64),
            spatial_index=torch.zeros(batch, m, device=device, dtype=torch.int64),
            valid=torch.zeros(batch, m, device=device, dtype=torch.bool),
            frames_seen=torch.zeros(batch, device=device, dtype=torch.int64),
        )

    @classmethod
    def cat(cls, memories: Sequence[Memory]) -> Memory:
        """Concatenate along the session axis (each may hold any number of sessions)."""
        if not memories:
            raise ValueError("Memory.cat needs at least one memory.")
        features = [x.features for x in memories if x.features is not None]
        return cls(
            **{f: torch.cat([getattr(x, f) for x in memories]) for f in _FIELDS},
            features=torch.cat(features) if len(features) == len(memories) else None,
        )

    @classmethod
    def stack(cls, memories: Sequence[Memory]) -> Memory:
        """Same as ``cat``; reads better for a list of single-session memories."""
        return cls.cat(memories)

    # ------------------------------------------------------------------ sizes
    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    @property
    def size(self) -> int:
        """m: slots per session."""
        return self.tokens.shape[1]

    @property
    def channels(self) -> int:
        return self.tokens.shape[2]

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def __len__(self) -> int:
        return self.batch_size

    @staticmethod
    def nbytes_per_session(cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> int:
        """Bytes one session's memory takes: tokens plus indices, mask and frame count."""
        m, c = cfg.memory_size, cfg.backbone_channels
        itemsize = torch.empty((), dtype=dtype).element_size()
        return m * c * itemsize + m * (8 + 8 + 1) + 8

    # ------------------------------------------------------------------ selecting
    def select(self, indices: Sequence[int] | Tensor) -> Memory:
        """The sessions at ``indices`` (a new Memory; the tensors are copies)."""
        idx = torch.as_tensor(indices, dtype=torch.int64, device=self.device).reshape(-1)
        features = None if self.features is None else self.features.index_select(0, idx)
        return Memory(
            **{f: getattr(self, f).index_select(0, idx) for f in _FIELDS}, features=features
        )

    def slot_range(self, start: int, end: int) -> Memory:
        """Slots ``[start, end)`` of every session, as views (features too where kept): one
        of several memories kept side by side (``side_by_side``, ``model.pair``)."""
        return Memory(
            tokens=self.tokens[:, start:end],
            time_index=self.time_index[:, start:end],
            spatial_index=self.spatial_index[:, start:end],
            valid=self.valid[:, start:end],
            frames_seen=self.frames_seen,
            features=None if self.features is None else self.features[:, start:end],
        )

    @classmethod
    def side_by_side(cls, memories: Sequence[Memory]) -> Memory:
        """One memory of the same sessions' memories laid along the slot axis, in order
        (each must have seen the same frames); features only where all keep them."""
        first = memories[0]
        if any(not torch.equal(x.frames_seen, first.frames_seen) for x in memories[1:]):
            raise ValueError("Memories side by side must have seen the same frames.")
        features = [x.features for x in memories if x.features is not None]
        return cls(
            **{
                f: torch.cat([getattr(x, f) for x in memories], dim=1)
                for f in ("tokens", "time_index", "spatial_index", "valid")
            },
            frames_seen=first.frames_seen,
            features=torch.cat(features, dim=1) if len(features) == len(memories) else None,
        )

    def padded_to(self, m: int) -> Memory:
        """The same sessions with ``m`` >= ``size`` slots: empty slots added after the
        others, as in a memory not yet full (the canonical layout is kept)."""
        extra = m - self.size
        if extra < 0:
            raise ValueError(f"A memory of {self.size} slots cannot be padded to {m}.")
        b = self.batch_size

        def more(x: Tensor) -> Tensor:
            return torch.cat((x, x.new_zeros(b, extra, *x.shape[2:])), dim=1)

        return Memory(
            more(self.tokens),
            more(self.time_index),
            more(self.spatial_index),
            more(self.valid),
            self.frames_seen.clone(),
        )

    def _steps_valid_first(self) -> Tensor:
        """``time_index`` ``(B, m)`` with empty slots at the largest step: ascending in the
        canonical layout."""
        return torch.where(self.valid, self.time_index, torch.iinfo(torch.int64).max)

    def in_time_order(self) -> bool:
        """True when every session keeps the canonical layout's order: valid slots first,
        their steps never decreasing (what ``slots_between`` relies on)."""
        steps = self._steps_valid_first()
        return bool((steps[:, 1:] >= steps[:, :-1]).all())

    def slots_between(self, sessions: Tensor, lowest: Tensor, highest: Tensor) -> Memory:
        """For row n, the valid slots of session ``sessions[n]`` whose step lies in
        ``[lowest[n], highest[n]]``, in their order, padded with invalid slots to the
        longest such run: a Memory of ``N`` rows and ``U`` slots. Needs ``in_time_order``:
        the slots of a stretch of steps are then one run, found by binary search.

        Args:
            sessions, lowest, highest: ``(N,)`` int64.
        """
        m = self.size
        steps = self._steps_valid_first()  # (B, m), ascending
        if self.batch_size == 1:  # every row searches the one session (the query worker's)
            first = torch.searchsorted(steps[0], lowest)[:, None]  # (N, 1)
            end = torch.searchsorted(steps[0], highest, right=True)[:, None]
        else:  # a copy of its session's steps per row: (N, m)
            steps = steps.index_select(0, sessions)
            first = torch.searchsorted(steps, lowest[:, None])  # (N, 1)
            end = torch.searchsorted(steps, highest[:, None], right=True)  # (N, 1)
        width = max(int((end - first).max()), 1)
        slots = first + torch.arange(width, device=self.device)  # (N, U)
        inside = slots < end
        flat = (sessions[:, None] * m + slots.clamp(max=m - 1)).view(-1)  # (N * U,)
        n = sessions.shape[0]
        start = int(first[0, 0])
        # one row (a lone question, a whole-session timeline): its run is a view of the
        # session's slots, not a copy (the whole memory, for a timeline)
        lone = n == 1 and start + width <= m

        def rows(x: Tensor) -> Tensor:
            if lone:
                return x[sessions[0], start : start + width][None]  # (1, U, ...)
            return (
                x.reshape(self.batch_size * m, *x.shape[2:])
                .index_select(0, flat)
                .view(n, width, *x.shape[2:])
            )

        return Memory(
            rows(self.tokens),
            rows(self.time_index),
            rows(self.spatial_index),
            rows(self.valid) & inside,
            self.frames_seen.index_select(0, sessions),
        )

    def __getitem__(self, key: int | slice | Sequence[int] | Tensor) -> Memory:
        if isinstance(key, int):
            key = [key]
        elif isinstance(key, slice):
            key = range(*key.indices(self.batch_size))
        return self.select(list(key) if isinstance(key, range) else key)

    def put_(self, indices: Sequence[int] | Tensor, other: Memory) -> Memory:
        """Overwrite sessions ``indices`` with ``other`` in place (a device pool's write-back).

        A memory that keeps sampler ``features`` takes only sessions that carry theirs: a
        slot's would be stale otherwise (``LongVMNet.with_write_features`` adds them)."""
        idx = torch.as_tensor(indices, dtype=torch.int64, device=self.device).reshape(-1)
        if other.batch_size != idx.numel():
            raise ValueError("Memory.put_ needs one memory per index.")
        if self.features is not None and other.features is None:
            raise ValueError("This memory keeps sampler features; put_ needs memories with them.")
        for f in _FIELDS:
            getattr(self, f).index_copy_(0, idx, getattr(other, f).to(self.device))
        if self.features is not None and other.features is not None:
            self.features.index_copy_(0, idx, other.features.to(self.device))
        return self

    # ------------------------------------------------------------------ moving
    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Memory:
        """Move to ``device``; ``dtype`` applies to the tokens only (indices stay int64)."""
        tokens = self.tokens.to(device=device, dtype=dtype)
        features = None if self.features is None else self.features.to(device)
        indices = {f: getattr(self, f).to(device) for f in _INDEX_FIELDS}
        return Memory(tokens, **indices, features=features)

    def detach(self) -> Memory:
        """Cut the autograd graph (training keeps memory across steps, not its history)."""
        features = None if self.features is None else self.features.detach()
        indices = {f: getattr(self, f) for f in _INDEX_FIELDS}
        return Memory(self.tokens.detach(), **indices, features=features)

    def equal(self, other: Memory) -> bool:
        """Bit-identical: same shapes, dtypes and values in every field (``features``, a
        cache, aside)."""
        return all(
            getattr(self, f).dtype == getattr(other, f).dtype
            and torch.equal(getattr(self, f), getattr(other, f).to(self.device))
            for f in _FIELDS
        )

    # ------------------------------------------------------------------ bytes
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Lossless export as named numpy arrays (raw bytes + dtype + shape; nothing pickled)."""
        if self.tokens.dtype == torch.bfloat16:
            raise ValueError(
                "Memory.to_arrays cannot export bfloat16 tokens; use float16 or float32."
            )
        return {f: getattr(self, f).detach().cpu().numpy().copy() for f in _FIELDS}

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], *, device: torch.device | str | None = None
    ) -> Memory:
        """Inverse of ``to_arrays``; shapes and dtypes are checked."""
        missing = [f for f in _FIELDS if f not in arrays]
        if missing:
            raise ValueError(f"Memory arrays lack {missing}.")
        return cls(
            **{f: torch.from_numpy(np.array(arrays[f], copy=True)).to(device) for f in _FIELDS}
        )
