"""What a memory writer chooses from: the session's memory tokens plus the new clip's tokens.

The clip's frames continue the session timeline: frame ``t`` of the clip gets time index
``frames_seen + t``. A clip may be partial (the end of a session): its missing frames are
masked, must come last, and their tokens never enter memory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor

from model.layers import take_rows
from model.memory import Memory


@dataclass
class ClipTokens:
    """One clip per session, as tokens.

    Attributes:
        tokens: ``(B, k, C)`` with ``k = T * S`` (frame-major: frame t's tokens are
            ``t*S .. t*S + S - 1``).
        time_index, spatial_index: ``(B, k)`` int64.
        valid: ``(B, k)`` bool, False for tokens of masked (missing) frames.
        frames: ``(B,)`` int64 number of real frames in each session's clip.
    """

    tokens: Tensor
    time_index: Tensor
    spatial_index: Tensor
    valid: Tensor
    frames: Tensor

    @classmethod
    def from_frames(
        cls,
        tokens: Tensor,
        frames_seen: Tensor,
        clip_frames: int,
        frame_mask: Tensor | None = None,
    ) -> ClipTokens:
        """Flatten backbone tokens ``(B, T, S, C)``, padding T up to ``clip_frames``.

        Padding to the full clip length keeps the writer's shapes fixed, so a session's
        result does not depend on the length of anything else in the batch.
        """
        b, t, s, c = tokens.shape
        if t > clip_frames:
            raise ValueError(f"A clip holds at most {clip_frames} frames, got {t}.")
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=tokens.device)
        frame_mask = frame_mask.to(device=tokens.device, dtype=torch.bool)
        if tuple(frame_mask.shape) != (b, t):
            raise ValueError(f"frame_mask must have shape {(b, t)}, got {tuple(frame_mask.shape)}.")
        if bool((frame_mask[:, 1:] & ~frame_mask[:, :-1]).any()):
            raise ValueError("frame_mask may only mask frames at the end of a clip.")
        if t < clip_frames:
            pad = clip_frames - t
            tokens = torch.cat((tokens, tokens.new_zeros(b, pad, s, c)), dim=1)  # (B, T', S, C)
            frame_mask = torch.cat((frame_mask, frame_mask.new_zeros(b, pad)), dim=1)  # (B, T')
        if not bool(frame_mask.all()):  # a whole clip (the usual case) has nothing to clear
            tokens = tokens.masked_fill(~frame_mask[:, :, None, None], 0.0)
        steps = torch.arange(clip_frames, device=tokens.device)
        time_index = frames_seen.to(tokens.device)[:, None] + steps  # (B, T')
        cells = torch.arange(s, device=tokens.device)
        return cls(
            tokens=tokens.reshape(b, clip_frames * s, c),  # (B, T', S, C) -> (B, k, C)
            time_index=time_index[:, :, None].expand(b, clip_frames, s).reshape(b, -1),  # (B, k)
            spatial_index=cells.expand(b, clip_frames, s).reshape(b, -1),  # (B, k)
            valid=frame_mask[:, :, None].expand(b, clip_frames, s).reshape(b, -1),  # (B, k)
            frames=frame_mask.sum(dim=1),
        )


class Candidates:
    """Memory tokens followed by clip tokens: ``n = m + k`` candidates per session.

    Attributes:
        parts: token tensors ``(B, n_i, C)`` whose rows, joined in order, are the
            candidates' (the memory's and the clip's); ``tokens`` joins them on first use.
        time_index, spatial_index: ``(B, n)`` int64; valid: ``(B, n)`` bool;
        frames_seen: ``(B,)`` frames seen once this clip is written.

    An inference write reads the candidates' tokens only to copy the kept ones into the
    new memory: it takes them from the parts where they lie (``gather``) and never joins
    them (joining 4,352 x 576 numbers and copying most of them again was a sixth of a
    write).
    """

    def __init__(
        self,
        tokens: Tensor | tuple[Tensor, ...],
        time_index: Tensor,
        spatial_index: Tensor,
        valid: Tensor,
        frames_seen: Tensor,
    ) -> None:
        self.parts = (tokens,) if isinstance(tokens, Tensor) else tuple(tokens)
        self.time_index = time_index
        self.spatial_index = spatial_index
        self.valid = valid
        self.frames_seen = frames_seen
        self._joined: Tensor | None = self.parts[0] if len(self.parts) == 1 else None

    @classmethod
    def of(cls, memory: Memory, clip: ClipTokens) -> Candidates:
        return cls(
            tokens=(memory.tokens, clip.tokens.to(memory.tokens.dtype)),
            time_index=torch.cat((memory.time_index, clip.time_index), dim=1),
            spatial_index=torch.cat((memory.spatial_index, clip.spatial_index), dim=1),
            valid=torch.cat((memory.valid, clip.valid), dim=1),
            frames_seen=memory.frames_seen + clip.frames,
        )

    @property
    def tokens(self) -> Tensor:
        """``(B, n, C)``: the parts joined (once)."""
        if self._joined is None:
            self._joined = torch.cat(self.parts, dim=1)
        return self._joined

    @property
    def batch_size(self) -> int:
        return self.valid.shape[0]

    def session(self, i: int) -> Candidates:
        """Session ``i`` alone (batch of one), for per-session processing."""
        return Candidates(
            tuple(part[i : i + 1] for part in self.parts),
            self.time_index[i : i + 1],
            self.spatial_index[i : i + 1],
            self.valid[i : i + 1],
            self.frames_seen[i : i + 1],
        )

    def keep(self, chosen: Tensor, m: int, weights: Tensor | None = None) -> Memory:
        """The memory made of the ``chosen`` candidates: ``gather(slots(chosen, m), weights)``."""
        return self.gather(self.slots(chosen, m), weights)

    def slots(self, chosen: Tensor, m: int) -> Tensor:
        """Candidate positions ``(B, m)`` of the ``chosen`` ones, in canonical memory order.

        Args:
            chosen: ``(B, n)`` bool with exactly ``m`` True per row (invalid candidates may
                be among them as padding when fewer than ``m`` are valid).
            m: memory size.
        """
        # Positions of chosen candidates, in candidate order: (B, m) (m per row, row-major)
        pos = chosen.nonzero()[:, 1].view(chosen.shape[0], m)
        if bool(self.valid.all()) and _in_time_order(self.time_index, self.spatial_index):
            return pos  # a full memory and a whole clip: candidate order is canonical
        # Canonical order: valid first, then by (time, spatial); stable sorts, least
        # significant key first.
        for key in (self.spatial_index, self.time_index, (~self.valid).to(torch.int64)):
            order = torch.sort(key.gather(1, pos), dim=-1, stable=True).indices
            pos = pos.gather(1, order)
        return pos

    def gather(self, pos: Tensor, weights: Tensor | None = None) -> Memory:
        """The memory whose slot j holds candidate ``pos[:, j]``; invalid slots are zeroed.

        ``weights`` ``(B, n)``: straight-through weights; kept tokens are multiplied by
        theirs so that the loss reaches the scores (their forward value is 1).
        """
        valid = self.valid.gather(1, pos)  # (B, m)
        if weights is None and not self._needs_joined():
            tokens = self._take(pos, valid)  # (B, m, C), a new tensor, invalid slots zero
        else:  # autograd sees one copy of the joined tokens and the weights
            tokens = take_rows(self.tokens, pos)  # (B, m, C)
            if weights is not None:
                tokens = tokens * weights.gather(1, pos)[:, :, None]  # (B, m, C) x (B, m, 1)
            if not bool(valid.all()):  # a full memory (the usual case) has no slot to clear
                tokens.masked_fill_(~valid[:, :, None], 0.0)  # neither op's backward reads it
        return Memory(
            tokens=tokens,
            time_index=self.time_index.gather(1, pos).masked_fill(~valid, 0),
            spatial_index=self.spatial_index.gather(1, pos).masked_fill(~valid, 0),
            valid=valid,
            frames_seen=self.frames_seen,
        )

    def _needs_joined(self) -> bool:
        """Whether the tokens must be read joined: they were joined already, or a part
        needs gradients (training, where autograd must see the copy)."""
        return self._joined is not None or any(part.requires_grad for part in self.parts)

    def _take(self, pos: Tensor, valid: Tensor) -> Tensor:
        """The candidates' tokens at ``pos`` ``(B, m)``, zeros where not ``valid``: ``(B, m, C)``.

        Each session's positions fall into a few runs of one part each: a full memory's
        kept slots then its kept clip tokens; a young memory's slots, its clip tokens,
        then its empty slots (canonical order keeps valid slots first). Each run is copied
        straight from its part into its stretch of the result, and a run of invalid slots
        is zeroed where it lies; joining the parts first copied 10 MB more, and clearing
        the empty slots passed over the whole result again (a third of a young memory's
        write). Positions in many runs (not a writer's) read the joined tokens.
        """
        first = self.parts[0]
        out = first.new_empty(*pos.shape, *first.shape[2:])  # (B, m, C)
        starts = [0, *itertools.accumulate(part.shape[1] for part in self.parts)]  # per part
        ends = torch.tensor(starts[1:], device=pos.device)
        m = pos.shape[1]
        for i in range(pos.shape[0]):
            part_of = torch.bucketize(pos[i], ends, right=True)  # (m,) which part
            run_of = torch.where(valid[i], part_of, -1)  # -1: an invalid slot
            bounds = [0, *((run_of[1:] != run_of[:-1]).nonzero()[:, 0] + 1).tolist(), m]
            if len(bounds) > _MOST_RUNS + 1:
                out[i] = take_rows(self.tokens[i : i + 1], pos[i : i + 1])[0]
                out[i].masked_fill_(~valid[i, :, None], 0.0)
                continue
            runs = zip(bounds[:-1], bounds[1:], run_of[bounds[:-1]].tolist(), strict=True)
            for a, b, p in runs:
                if p < 0:
                    out[i, a:b].zero_()
                else:
                    rows = pos[i, a:b] - starts[p]
                    torch.index_select(self.parts[p][i], 0, rows, out=out[i, a:b])
        return out


#: Runs of one part (or of invalid slots) a session's positions may fall into before
#: ``Candidates._take`` joins the tokens instead (a writer's fall into two or three).
_MOST_RUNS = 8


def _in_time_order(time_index: Tensor, spatial_index: Tensor) -> bool:
    """Whether every row of ``(B, n)`` positions is sorted by (time, spatial)."""
    dt = time_index[:, 1:] - time_index[:, :-1]
    ds = spatial_index[:, 1:] - spatial_index[:, :-1]
    return bool(((dt > 0) | ((dt == 0) & (ds >= 0))).all())
