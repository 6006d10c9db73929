"""Memory writers: fold one clip into each session's memory, keeping exactly ``m`` tokens.

One interface, three algorithms, chosen by name (``ModelConfig.writer``):

- ``neural``: the trained sampler (paper). Inference keeps the exact top-m of its scores,
  no noise; training adds Gumbel noise and relaxes the choice (``model.relaxation``).
- ``random``: the paper's ablation (Table 3): a uniformly random m-subset of the
  candidates, seeded from the session's ``frames_seen`` so that replays are exact.
- ``merge``: MovieChat-style consolidation: while more than m tokens remain, average the
  most cosine-similar pair of adjacent tokens. Adjacent means consecutive in
  ``(time, spatial)`` order (row-major within a frame; the last cell of a frame is
  adjacent to the first cell of the next one).

Every writer processes each session on its own, with fixed shapes, so a session's memory is
bit-identical whichever sessions share its batch.
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from model.candidates import Candidates, ClipTokens
from model.config import ModelConfig
from model.errors import ConfigError
from model.layers import take_rows
from model.memory import Memory
from model.relaxation import exact_top_k, relaxed_top_k
from model.sampler import NeuralSampler


class TrainWrite(NamedTuple):
    """What a training write gives the loss.

    memory: the new memory, kept tokens multiplied by their straight-through weights;
    weights: those weights ``(B, m)``; candidates: the memory + clip tokens the writer chose
    from; scores: the sampler's score of each candidate ``(B, n)``, None for writers
    without one.
    """

    memory: Memory
    weights: Tensor
    candidates: Candidates
    scores: Tensor | None


class MemoryWriter(abc.ABC):
    """Writes clips into memories. Subclasses implement ``write``."""

    name: str = ""

    def __init__(self, memory_size: int) -> None:
        self.memory_size = memory_size

    @abc.abstractmethod
    def write(self, memory: Memory, clip: ClipTokens) -> Memory:
        """Inference: deterministic new memory ``(B, m, C)`` from memory + clip."""

    def write_train(
        self,
        memory: Memory,
        clip: ClipTokens,
        *,
        temperature: float,
        generator: torch.Generator | None = None,
    ) -> TrainWrite:
        """Training: the new memory and per-slot weights ``(B, m)`` the loss flows through.

        Writers without parameters have nothing to learn: their memory is the inference
        one and the weights are ones.
        """
        new = self.write(memory, clip)
        ones = torch.ones(new.valid.shape, device=new.device, dtype=new.tokens.dtype)
        return TrainWrite(new, ones, Candidates.of(memory, clip), None)


class NeuralWriter(MemoryWriter):
    """Keeps the m best-scored candidates of the neural sampler."""

    name = "neural"

    def __init__(self, sampler: NeuralSampler, memory_size: int, clip_tokens: int) -> None:
        super().__init__(memory_size)
        self.sampler = sampler
        self.clip_tokens = clip_tokens  # rows of every projection of sampler inputs

    def _scores(self, cand: Candidates) -> Tensor:
        return self.sampler(cand.tokens, cand.time_index, cand.spatial_index, cand.valid)

    @torch.no_grad()
    def write(self, memory: Memory, clip: ClipTokens) -> Memory:
        """The new memory, carrying each kept slot's sampler input (``Memory.features``):
        the next write then projects only its clip's tokens."""
        cand = Candidates.of(memory, clip)
        x = torch.cat((self.features(memory), self._clip_inputs(clip)), dim=1)  # (B, n, d)
        # One session at a time: batched matmuls may round differently per batch size.
        real = cand.valid.sum(dim=1).tolist()
        scores = []
        for i in range(cand.batch_size):
            if real[i] <= self.memory_size:
                # a young memory: every real candidate is kept whatever its score (and the
                # padding is the lowest empty slots either way), so none is scored
                scores.append(x.new_zeros(1, x.shape[1]))
                continue
            one = cand.session(i)
            scores.append(
                self.sampler.score_inputs(
                    x[i : i + 1], one.time_index, one.spatial_index, one.valid
                )
            )
        chosen = exact_top_k(torch.cat(scores), self.memory_size, cand.valid)  # (B, n)
        slots = cand.slots(chosen, self.memory_size)
        new = cand.gather(slots)
        new.features = take_rows(x, slots)  # (B, m, d)
        return new

    def features(self, memory: Memory) -> Tensor:
        """The sampler's input for each of ``memory``'s slots ``(B, m, d)``: carried from
        the write that kept them, or computed (a memory read back from storage), in chunks
        of one clip's tokens either way (``NeuralSampler.inputs_in_chunks``)."""
        if memory.features is not None:
            return memory.features
        rows = self.clip_tokens
        return self.sampler.inputs_in_chunks(
            memory.tokens, memory.time_index, memory.spatial_index, rows
        )

    def _clip_inputs(self, clip: ClipTokens) -> Tensor:
        return self.sampler.inputs_in_chunks(
            clip.tokens, clip.time_index, clip.spatial_index, self.clip_tokens
        )  # (B, k, d)

    def write_train(
        self,
        memory: Memory,
        clip: ClipTokens,
        *,
        temperature: float,
        generator: torch.Generator | None = None,
    ) -> TrainWrite:
        cand = Candidates.of(memory, clip)
        scores = self._scores(cand)  # (B, n), batched: training needs no batch invariance
        top = relaxed_top_k(scores, self.memory_size, temperature, cand.valid, generator=generator)
        slots = cand.slots(top.hard, self.memory_size)  # (B, m)
        new = cand.gather(slots, weights=top.weights)
        slot_weights = top.weights.gather(1, slots).masked_fill(~new.valid, 0.0)  # (B, m)
        return TrainWrite(new, slot_weights, cand, scores)


class RandomWriter(MemoryWriter):
    """Uniform random m-subset of the valid candidates (paper's random-sampling ablation).

    Uniform over the candidates of each write (memory + clip), like the sampler it
    replaces; not a reservoir over the whole video.
    """

    name = "random"

    def __init__(self, memory_size: int, seed: int) -> None:
        super().__init__(memory_size)
        self.seed = seed

    @torch.no_grad()
    def write(self, memory: Memory, clip: ClipTokens) -> Memory:
        cand = Candidates.of(memory, clip)
        n = cand.tokens.shape[1]
        keys = []
        for frames_seen in memory.frames_seen.tolist():
            # Seeded per session and write: a replay draws the same subset, on any device.
            g = torch.Generator().manual_seed(_mix(self.seed, frames_seen))
            keys.append(torch.rand(n, generator=g))
        scores = torch.stack(keys).to(cand.tokens.device)  # (B, n)
        return cand.keep(exact_top_k(scores, self.memory_size, cand.valid), self.memory_size)


def _mix(seed: int, frames_seen: int) -> int:
    """A 63-bit seed from the writer seed and the session's position on its timeline."""
    return (seed * 0x9E3779B97F4A7C15 + frames_seen * 0xBF58476D1CE4E5B9 + 1) % (2**63)


class MergeWriter(MemoryWriter):
    """MovieChat-style consolidation by repeated merging of the most similar adjacent pair.

    MovieChat's code measures similarity as a raw dot-product mean and takes the max of a
    cosine *distance*; here it is true cosine similarity and argmax. The merged token is
    the mean of the pair (as MovieChat) and keeps the earlier token's time and grid cell.
    """

    name = "merge"

    @torch.no_grad()
    def write(self, memory: Memory, clip: ClipTokens) -> Memory:
        cand = Candidates.of(memory, clip)
        every = torch.ones_like(cand.valid)
        ordered = cand.keep(every, cand.valid.shape[1])  # canonical (time, spatial) order
        sessions = [self._merge_session(ordered, i) for i in range(cand.batch_size)]
        return Memory.cat(sessions)

    def _merge_session(self, ordered: Memory, i: int) -> Memory:
        m = self.memory_size
        count = int(ordered.valid[i].sum())
        # A sequential loop of small steps: numpy on the CPU is far quicker at that than
        # torch kernel launches, and exactly reproducible.
        x = ordered.tokens[i, :count].detach().cpu().float().numpy().copy()  # (N, C) in time order
        alive = np.ones(count, dtype=bool)
        if count > m:
            nxt = [*range(1, count), -1]
            prv = list(range(-1, count - 1))
            sims = np.full(count, -np.inf)  # sims[j]: cosine of j and the next alive token
            sims[:-1] = _cosine(x[:-1], x[1:])
            for _ in range(count - m):
                j = int(np.argmax(sims))  # first of equal maxima: deterministic
                k = nxt[j]
                x[j] = (x[j] + x[k]) / 2
                alive[k], sims[k] = False, -np.inf
                nxt[j] = nxt[k]
                if nxt[j] >= 0:
                    prv[nxt[j]] = j
                    sims[j] = _cosine(x[j], x[nxt[j]])
                else:
                    sims[j] = -np.inf
                if prv[j] >= 0:
                    sims[prv[j]] = _cosine(x[prv[j]], x[j])
        kept = torch.from_numpy(np.flatnonzero(alive)).to(ordered.device)
        n = kept.numel()
        out = Memory.zeros(1, m, x.shape[-1], device=ordered.device, dtype=ordered.tokens.dtype)
        out.tokens[0, :n] = torch.from_numpy(x[alive]).to(ordered.device, ordered.tokens.dtype)
        out.time_index[0, :n] = ordered.time_index[i, kept]
        out.spatial_index[0, :n] = ordered.spatial_index[i, kept]
        out.valid[0, :n] = True
        out.frames_seen[0] = ordered.frames_seen[i]
        return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``a`` and ``b`` ``(..., C)`` along the last axis, in float64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    return (a64 * b64).sum(-1) / np.maximum(norms, 1e-12)


def make_writer(name: str, cfg: ModelConfig, sampler: NeuralSampler) -> MemoryWriter:
    """The writer called ``name`` for this config (the neural one scores with ``sampler``)."""
    if name == "neural":
        return NeuralWriter(sampler, cfg.memory_size, cfg.clip_tokens)
    if name == "random":
        return RandomWriter(cfg.memory_size, cfg.writer_seed)
    if name == "merge":
        return MergeWriter(cfg.memory_size)
    raise ConfigError(f"Unknown memory writer {name!r}; choose neural, random or merge.")
