"""A session memory made ready for questions: the query-independent part of answering.

Every question on a session starts from the same thing: the memory's tokens projected to
the model's width (and, with ``query_fusion == "decoder"``, encoded). ``LongVMNet.prepare``
computes it once per memory and model; the query worker keeps it in its cache, so a
question pays only for what depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from model.memory import Memory
from model.timelines import Timelines


@dataclass(frozen=True, eq=False)
class PreparedMemory:
    """Sessions' memories as the answer side reads them.

    Attributes:
        memory: the sessions' memory with tokens ``(B, m, d [+ E])`` in the model's width
            (``EncoderDecoder.project_memory``) instead of backbone space.
        model_key: ``LongVMNet.instance_key`` of the model that prepared it; another model
            refuses it (same widths, other weights: its answers would be wrong silently).
        timelines: per session, its whole-session per-step activity answers by product,
            kept for the long windows asked later (``model.timelines``); a batch made by
            ``cat`` shares each session's with the memory it came from.
        partners: the same sessions' memories of a model pair's partners, each prepared
            by its model (``model.pair``); empty for one model.
    """

    memory: Memory
    model_key: str
    timelines: tuple[Timelines, ...] = ()
    partners: tuple[PreparedMemory, ...] = ()

    def __post_init__(self) -> None:
        if not self.timelines:  # frozen: set once, here
            fresh = tuple(Timelines() for _ in range(self.memory.batch_size))
            object.__setattr__(self, "timelines", fresh)
        if len(self.timelines) != self.memory.batch_size:
            raise ValueError("A prepared memory needs one timeline store per session.")

    @property
    def batch_size(self) -> int:
        return self.memory.batch_size

    @classmethod
    def cat(cls, prepared: Sequence[PreparedMemory]) -> PreparedMemory:
        """One batch of every session of ``prepared``, in order (all of one model)."""
        keys = {p.model_key for p in prepared}
        if len(keys) != 1:
            raise ValueError(f"Prepared memories of {len(keys)} models cannot share a batch.")
        timelines = tuple(t for p in prepared for t in p.timelines)
        counts = {len(p.partners) for p in prepared}
        if len(counts) != 1:
            raise ValueError("Memories prepared by a model pair cannot share a batch with others.")
        partners = tuple(cls.cat([p.partners[i] for p in prepared]) for i in range(counts.pop()))
        return cls(Memory.cat([p.memory for p in prepared]), keys.pop(), timelines, partners)
