"""Trained models that keep a memory each of the same session and name products together.

Reconciliation reads a trip's cart moves from one model's per-step answers and gives each
move to the product whose answer peaks there. One model names the right product at 65 % of
the matched moves of new stores; the geometric mean of two models' per-step answers (the
shipped ``tiny`` and ``tiny-early``, trained on other backbones and recipes) names 82 %,
since their mistakes differ (docs/RESULTS.md, "Two models' answers served"), and three
name 90 % ("A third model to name moves"). A pair serves that: its ``lead`` writes,
answers every question and finds the moves as one model does; each of its ``partners``
writes a memory of its own from the same frames and answers only the activity questions
that ask for it (``ActivityQuery.naming``), and the geometric mean of all members'
answers comes back as ``ActivityPrediction.naming``.

To the service a pair is one model. Its memory is one ``Memory`` of ``m_lead + m_1 + ...``
slots, the lead's first, then each partner's in order (so the engine's pool, snapshots,
replay and storage keep one array set a session, bit-identical on replay as each part
is), and its backbone tokens are all backbones' tokens side by side on the channel axis
``(T, S, C_lead + C_1 + ...)``.

A pair checkpoint is a directory whose ``config.json`` names the member checkpoints
(``model.pair_config``); nothing else is stored. Write one with

    python -m model.pair --lead LEAD_DIR --partner DIR [--partner DIR2] --name tiny-pair --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from model.backbone_run import PER_CLIP, BackboneRun
from model.config import ModelConfig
from model.errors import CheckpointError
from model.memory import Memory
from model.network import LongVMNet
from model.pair_config import is_pair_checkpoint, pair_members, write_pair_checkpoint
from model.pair_naming import geometric_mean
from model.prepared import PreparedMemory
from model.queries import ActivityPrediction, ActivityQuery, Prediction, Query

#: the fields both members must share: what the service reads off one config (frames,
#: clips, questions' activities) and what lets their tokens and slots lie side by side
SHARED_FIELDS = ("clip_frames", "fps", "image_size", "grid", "activity_labels")


class ModelPair:
    """A lead ``LongVMNet`` and its naming partners serving as one model (the module's
    docstring)."""

    def __init__(self, lead: LongVMNet, partners: Sequence[LongVMNet], name: str) -> None:
        if not partners:
            raise CheckpointError("A model pair needs at least one partner.")
        for partner in partners:
            for field in SHARED_FIELDS:
                if getattr(lead.cfg, field) != getattr(partner.cfg, field):
                    raise CheckpointError(
                        f"A model pair's members must share {field}: "
                        f"{getattr(lead.cfg, field)!r} and {getattr(partner.cfg, field)!r}."
                    )
            if lead.cfg.backbone_channels != partner.cfg.backbone_channels:
                raise CheckpointError("A model pair's members must have backbones of one width.")
        self.lead, self.partners, self.name = lead, tuple(partners), name
        self.members = (lead, *self.partners)
        sizes = [member.cfg.memory_size for member in self.members]
        #: where each member's slots start and end in the pair memory, the lead's first
        ends = list(itertools.accumulate(sizes))
        self.cuts = tuple(zip([0, *ends[:-1]], ends, strict=True))
        # what the service reads: the lead's config with room for every member's memory
        self.cfg: ModelConfig = dataclasses.replace(lead.cfg, memory_size=sum(sizes))
        self.instance_key = uuid.uuid4().hex

    @classmethod
    def load(cls, directory: str | Path, *, device: torch.device | str | None = None) -> ModelPair:
        name, lead, partners = pair_members(directory)
        return cls(
            LongVMNet.load(lead, device=device),
            [LongVMNet.load(partner, device=device) for partner in partners],
            name,
        )

    @property
    def device(self) -> torch.device:
        return self.lead.device

    # ------------------------------------------------------------------ the memory's parts
    def parts(self, memory: Memory) -> list[Memory]:
        """Each member's memory of a pair memory ``(B, m_lead + m_1 + ...)``, the lead's first."""
        if memory.size != self.cfg.memory_size:
            raise ValueError(
                f"A pair memory has {self.cfg.memory_size} slots, this one {memory.size}."
            )
        # views: each member's writer and projection make new tensors
        return [memory.slot_range(start, end) for start, end in self.cuts]

    @staticmethod
    def joined(parts: Sequence[Memory]) -> Memory:
        """One pair memory of the members' memories (sessions in the same order, the same
        frames seen)."""
        return Memory.side_by_side(list(parts))

    @torch.no_grad()
    def fit_memory(self, memory: Memory) -> Memory:
        """``memory`` as this pair keeps it. A memory of another size was written under
        another checkpoint while the session was live. Where its size is the lead's and
        the first partners' (a pair that has since gained a partner), those parts are kept
        as they are; otherwise it is taken as the lead's, fitted to its size. The members
        it lacks start empty at the same frame count, so they name from the frames that
        come after."""
        if memory.size == self.cfg.memory_size:
            return memory
        ends = [end for _start, end in self.cuts]
        if memory.size in ends:
            kept = [memory.slot_range(start, end) for start, end in self.cuts if end <= memory.size]
        else:
            kept = [self.lead.fit_memory(memory)]
        lead = kept[0]
        for member in self.members[len(kept) :]:
            empty = Memory.empty(member.cfg, lead.batch_size, device=lead.device)
            empty.frames_seen = lead.frames_seen.clone()
            kept.append(empty)
        return self.joined(kept)

    @property
    def write_features(self) -> int:
        """The sampler inputs' width a pair memory carries between writes: the members'
        where all keep the same width (each part carries its own), else 0."""
        widths = {member.write_features for member in self.members}
        width = widths.pop()
        return width if width and not widths else 0

    @torch.no_grad()
    def with_write_features(self, memory: Memory) -> Memory:
        if not self.write_features or memory.features is not None:
            return memory
        return self.joined(
            [
                member.with_write_features(part)
                for member, part in zip(self.members, self.parts(memory), strict=True)
            ]
        )

    # ------------------------------------------------------------------ writing
    def encode_clips(
        self, clips: Sequence[np.ndarray | Tensor], run: BackboneRun = PER_CLIP
    ) -> list[Tensor]:
        """All backbones' tokens of each clip, side by side: ``(T_i, S, C_lead + C_1 + ...)``."""
        tokens = [member.encode_clips(clips, run) for member in self.members]
        return [torch.cat(list(clip), dim=-1) for clip in zip(*tokens, strict=True)]

    def write_tokens(
        self, memory: Memory | None, tokens: Tensor, frame_mask: Tensor | None = None
    ) -> Memory:
        """One clip per session into every member's memory: ``tokens`` ``(B, T, S, C_lead +
        C_1 + ...)`` as ``encode_clips`` gives them."""
        c = self.lead.cfg.backbone_channels  # every member's width (checked at __init__)
        parts = [None] * len(self.members) if memory is None else self.parts(memory)
        return self.joined(
            [
                member.write_tokens(part, tokens[..., i * c : (i + 1) * c], frame_mask)
                for i, (member, part) in enumerate(zip(self.members, parts, strict=True))
            ]
        )

    # ------------------------------------------------------------------ answering
    @torch.no_grad()
    def prepare(self, memory: Memory) -> PreparedMemory:
        """The lead's prepared memory carrying the partners' (``PreparedMemory.partners``)."""
        lead, *partners = self.parts(self.fit_memory(memory))
        return dataclasses.replace(
            self.lead.prepare(lead),
            partners=tuple(
                model.prepare(part) for model, part in zip(self.partners, partners, strict=True)
            ),
        )

    @torch.no_grad()
    def answer(
        self, memory: Memory | PreparedMemory, queries: Sequence[Query], **options: Any
    ) -> list[Prediction]:
        """The lead's predictions; an activity query that asks for ``naming`` also gets the
        geometric mean of every member's per-step answers, where the partners' memories of
        its session hold anything (a session begun under one model has nothing of them yet)."""
        if isinstance(memory, Memory):
            memory = self.prepare(memory)
        if len(memory.partners) != len(self.partners):
            raise ValueError("This memory was not prepared by this model pair; prepare it again.")
        predictions = self.lead.answer(memory, queries, **options)
        # a row is named where every partner's memory of its session holds something
        seen = torch.stack([p.memory.valid.any(dim=1) for p in memory.partners]).all(dim=0)
        seen_rows = seen.tolist()
        rows = [
            i
            for i, q in enumerate(queries)
            if isinstance(q, ActivityQuery) and q.naming and seen_rows[q.memory_index]
        ]
        if not rows:
            return predictions
        asked = [queries[i] for i in rows]
        others = [
            partner.answer(prepared, asked, **options)
            for partner, prepared in zip(self.partners, memory.partners, strict=True)
        ]
        out = list(predictions)
        for k, i in enumerate(rows):
            mine = out[i]
            answers = [mine, *(other[k] for other in others)]
            steps = [
                a.steps
                for a in answers
                if isinstance(a, ActivityPrediction) and a.steps is not None
            ]
            if len(steps) != len(answers):
                continue
            naming = geometric_mean(steps).astype(steps[0].dtype)  # (L, A)
            assert isinstance(mine, ActivityPrediction)
            out[i] = dataclasses.replace(mine, naming=naming)
        return out


def load_served(directory: str | Path, *, device: torch.device | str | None = None) -> Served:
    """The model a checkpoint directory holds: a pair's members or one network."""
    if is_pair_checkpoint(directory):
        return ModelPair.load(directory, device=device)
    return LongVMNet.load(directory, device=device)


#: what the service runs: one network or a pair, which it drives the same way
Served = LongVMNet | ModelPair


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a model pair's checkpoint directory.")
    parser.add_argument("--lead", type=Path, required=True, help="finds moves, answers all")
    parser.add_argument(
        "--partner",
        type=Path,
        action="append",
        required=True,
        help="helps name products (give it once per partner)",
    )
    parser.add_argument("--name", required=True, help="the pair's name in its model version")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        path = write_pair_checkpoint(args.out, args.name, args.lead, args.partner)
        ModelPair.load(args.out)  # members that cannot pair are refused here, not at serving
    except CheckpointError as exc:
        parser.error(str(exc))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
