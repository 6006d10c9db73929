"""Two trained models that keep a memory each of the same session and name products together.

Reconciliation reads a trip's cart moves from one model's per-step answers and gives each
move to the product whose answer peaks there. One model names the right product at 65 % of
the matched moves of new stores; the geometric mean of two models' per-step answers (the
shipped ``tiny`` and ``tiny-early``, trained on other backbones and recipes) names 82 %,
since their mistakes differ (docs/RESULTS.md, "Two models' answers served"). A pair serves
that: its ``lead`` writes, answers every question and finds the moves as one model does;
its ``partner`` writes a memory of its own from the same frames and answers only the
activity questions that ask for it (``ActivityQuery.naming``), and their geometric mean
comes back as ``ActivityPrediction.naming``.

To the service a pair is one model. Its memory is one ``Memory`` of ``m_lead + m_partner``
slots, the lead's first (so the engine's pool, snapshots, replay and storage keep one array
set a session, bit-identical on replay as each half is), and its backbone tokens are both
backbones' tokens side by side on the channel axis ``(T, S, C_lead + C_partner)``.

A pair checkpoint is a directory whose ``config.json`` names the two member checkpoints
(paths relative to it): ``{"format": "cartmem.pair", "format_version": 1, "name": ...,
"lead": "../tiny", "partner": "../tiny-early"}``. Nothing else is stored: the weights are
the members' safetensors. Write one with

    python -m model.pair --lead LEAD_DIR --partner PARTNER_DIR --name tiny-pair --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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
from model.prepared import PreparedMemory
from model.queries import ActivityPrediction, ActivityQuery, Prediction, Query

PAIR_FORMAT = "cartmem.pair"
PAIR_FORMAT_VERSION = 1

#: the fields both members must share: what the service reads off one config (frames,
#: clips, questions' activities) and what lets their tokens and slots lie side by side
SHARED_FIELDS = ("clip_frames", "fps", "image_size", "grid", "activity_labels")


def is_pair_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory``'s config.json is a pair's (it names two member checkpoints)."""
    path = Path(directory) / "config.json"
    try:
        return json.loads(path.read_text()).get("format") == PAIR_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def pair_members(directory: str | Path) -> tuple[str, Path, Path]:
    """The pair's name and its lead's and partner's checkpoint directories; a
    ``CheckpointError`` that says what is wrong with the config."""
    directory = Path(directory)
    path = directory / "config.json"
    try:
        raw: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != PAIR_FORMAT:
        raise CheckpointError(f"{path} is not a model pair's config (format {PAIR_FORMAT!r}).")
    if raw.get("format_version") != PAIR_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has pair format version {raw.get('format_version')!r}; "
            f"this code reads {PAIR_FORMAT_VERSION}."
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{path} needs a non-empty 'name'.")
    members = []
    for role in ("lead", "partner"):
        value = raw.get(role)
        if not isinstance(value, str) or not value:
            raise CheckpointError(f"{path} needs '{role}': the path of a checkpoint directory.")
        member = (directory / value).resolve()
        if not (member / "config.json").is_file() or not (member / "model.safetensors").is_file():
            raise CheckpointError(
                f"{path}: its {role} {value!r} ({member}) is not a checkpoint directory."
            )
        members.append(member)
    return name, members[0], members[1]


def write_pair_checkpoint(directory: str | Path, name: str, lead: Path, partner: Path) -> Path:
    """A pair checkpoint in ``directory`` naming ``lead`` and ``partner`` (stored relative to
    it, so the three move together)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "format": PAIR_FORMAT,
        "format_version": PAIR_FORMAT_VERSION,
        "name": name,
        "lead": _relative(lead, directory),
        "partner": _relative(partner, directory),
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    pair_members(directory)  # refuses a pair that would not load
    return path


def _relative(member: Path, directory: Path) -> str:
    return os.path.relpath(Path(member).resolve(), directory.resolve())


class ModelPair:
    """Two ``LongVMNet``s serving as one model (the module's docstring)."""

    def __init__(self, lead: LongVMNet, partner: LongVMNet, name: str) -> None:
        for field in SHARED_FIELDS:
            if getattr(lead.cfg, field) != getattr(partner.cfg, field):
                raise CheckpointError(
                    f"A model pair's members must share {field}: "
                    f"{getattr(lead.cfg, field)!r} and {getattr(partner.cfg, field)!r}."
                )
        if lead.cfg.backbone_channels != partner.cfg.backbone_channels:
            raise CheckpointError("A model pair's members must have backbones of one width.")
        self.lead, self.partner, self.name = lead, partner, name
        self.lead_slots = lead.cfg.memory_size
        # what the service reads: the lead's config with room for both memories
        self.cfg: ModelConfig = dataclasses.replace(
            lead.cfg, memory_size=lead.cfg.memory_size + partner.cfg.memory_size
        )
        self.instance_key = uuid.uuid4().hex

    @classmethod
    def load(cls, directory: str | Path, *, device: torch.device | str | None = None) -> ModelPair:
        name, lead, partner = pair_members(directory)
        return cls(
            LongVMNet.load(lead, device=device), LongVMNet.load(partner, device=device), name
        )

    @property
    def device(self) -> torch.device:
        return self.lead.device

    # ------------------------------------------------------------------ the memory's halves
    def halves(self, memory: Memory) -> tuple[Memory, Memory]:
        """The lead's and the partner's memories of a pair memory ``(B, m_lead + m_partner)``."""
        if memory.size != self.cfg.memory_size:
            raise ValueError(
                f"A pair memory has {self.cfg.memory_size} slots, this one {memory.size}."
            )
        cut = self.lead_slots  # views: each member's writer and projection make new tensors
        return memory.slot_range(0, cut), memory.slot_range(cut, memory.size)

    @staticmethod
    def joined(lead: Memory, partner: Memory) -> Memory:
        """One pair memory of the halves (sessions in the same order, the same frames seen)."""
        return Memory.side_by_side([lead, partner])

    @torch.no_grad()
    def fit_memory(self, memory: Memory) -> Memory:
        """``memory`` as this pair keeps it. A memory of another size was written by one
        model (the checkpoint changed while the session was live): it is taken as the
        lead's, fitted to its size, and the partner starts empty at the same frame count,
        so it names from the frames that come after."""
        if memory.size == self.cfg.memory_size:
            return memory
        lead = self.lead.fit_memory(memory)
        partner = Memory.empty(self.partner.cfg, lead.batch_size, device=lead.device)
        partner.frames_seen = lead.frames_seen.clone()
        return self.joined(lead, partner)

    @property
    def write_features(self) -> int:
        """The sampler inputs' width a pair memory carries between writes: both members'
        where they keep the same width (each half carries its own), else 0."""
        width = self.lead.write_features
        return width if width and width == self.partner.write_features else 0

    @torch.no_grad()
    def with_write_features(self, memory: Memory) -> Memory:
        if not self.write_features or memory.features is not None:
            return memory
        lead, partner = self.halves(memory)
        return self.joined(
            self.lead.with_write_features(lead), self.partner.with_write_features(partner)
        )

    # ------------------------------------------------------------------ writing
    def encode_clips(
        self, clips: Sequence[np.ndarray | Tensor], run: BackboneRun = PER_CLIP
    ) -> list[Tensor]:
        """Both backbones' tokens of each clip, side by side: ``(T_i, S, C_lead + C_partner)``."""
        lead = self.lead.encode_clips(clips, run)
        partner = self.partner.encode_clips(clips, run)
        return [torch.cat([a, b], dim=-1) for a, b in zip(lead, partner, strict=True)]

    def write_tokens(
        self, memory: Memory | None, tokens: Tensor, frame_mask: Tensor | None = None
    ) -> Memory:
        """One clip per session into both memories: ``tokens`` ``(B, T, S, C_lead +
        C_partner)`` as ``encode_clips`` gives them."""
        c = self.lead.cfg.backbone_channels
        lead, partner = (None, None) if memory is None else self.halves(memory)
        return self.joined(
            self.lead.write_tokens(lead, tokens[..., :c], frame_mask),
            self.partner.write_tokens(partner, tokens[..., c:], frame_mask),
        )

    # ------------------------------------------------------------------ answering
    @torch.no_grad()
    def prepare(self, memory: Memory) -> PreparedMemory:
        """The lead's prepared memory carrying the partner's (``PreparedMemory.partner``)."""
        lead, partner = self.halves(self.fit_memory(memory))
        return dataclasses.replace(self.lead.prepare(lead), partner=self.partner.prepare(partner))

    @torch.no_grad()
    def answer(
        self, memory: Memory | PreparedMemory, queries: Sequence[Query], **options: Any
    ) -> list[Prediction]:
        """The lead's predictions; an activity query that asks for ``naming`` also gets the
        geometric mean of both models' per-step answers, where the partner's memory of its
        session holds anything (a session begun under one model has nothing of it yet)."""
        if isinstance(memory, Memory):
            memory = self.prepare(memory)
        if memory.partner is None:
            raise ValueError("This memory was not prepared by a model pair; prepare it again.")
        predictions = self.lead.answer(memory, queries, **options)
        seen = memory.partner.memory.valid.any(dim=1).tolist()
        rows = [
            i
            for i, q in enumerate(queries)
            if isinstance(q, ActivityQuery) and q.naming and seen[q.memory_index]
        ]
        if not rows:
            return predictions
        second = self.partner.answer(memory.partner, [queries[i] for i in rows], **options)
        out = list(predictions)
        for i, other in zip(rows, second, strict=True):
            mine = out[i]
            assert isinstance(mine, ActivityPrediction) and isinstance(other, ActivityPrediction)
            if mine.steps is None or other.steps is None:
                continue
            naming = np.sqrt(mine.steps * other.steps)  # (L, A)
            out[i] = dataclasses.replace(mine, naming=naming)
        return out


def load_served(directory: str | Path, *, device: torch.device | str | None = None) -> Served:
    """The model a checkpoint directory holds: a pair's two members or one network."""
    if is_pair_checkpoint(directory):
        return ModelPair.load(directory, device=device)
    return LongVMNet.load(directory, device=device)


def checkpoint_files(directory: str | Path) -> list[Path]:
    """Every file whose bytes decide a checkpoint's answers, in a fixed order: its config,
    and its weights or, for a pair, each member's config and weights."""
    directory = Path(directory)
    if not is_pair_checkpoint(directory):
        return [directory / "model.safetensors", directory / "config.json"]
    _name, lead, partner = pair_members(directory)
    return [
        directory / "config.json",
        *(member / f for member in (lead, partner) for f in ("model.safetensors", "config.json")),
    ]


#: what the service runs: one network or a pair, which it drives the same way
Served = LongVMNet | ModelPair


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a model pair's checkpoint directory.")
    parser.add_argument("--lead", type=Path, required=True, help="finds moves, answers all")
    parser.add_argument("--partner", type=Path, required=True, help="helps name products")
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
