"""Long-VMNet: read a video once into a fixed-size memory, then answer queries from it.

Stage 1 (``write`` / ``populate``): each clip goes through the frozen backbone and a memory
writer keeps ``m`` tokens of memory + clip. Stage 2 (``answer``): a query's inputs and the
memory go through the encoder-decoder and a head; the video is never read again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from model.backbone import Backbone
from model.backbone_run import PER_CLIP, BackboneRun
from model.candidates import ClipTokens
from model.channel_statistics import channel_statistics
from model.checkpoint import read_config, read_weights, write_checkpoint
from model.config import ModelConfig
from model.encoder_decoder import EncoderDecoder, ObjectInputs
from model.heads import ActivityHead, BoxHead, TimeHead, decode_time
from model.memory import Memory
from model.object_token_cache import ObjectTokenCache
from model.outputs import ActivityOutputs, ObjectOutputs, QueryOutputs, TimeOutputs
from model.prepared import PreparedMemory
from model.queries import (
    ActivityPrediction,
    ActivityQuery,
    Image,
    ObjectPrediction,
    ObjectQuery,
    Prediction,
    Query,
    TimePrediction,
    TimeQuery,
)
from model.sampler import NeuralSampler
from model.timelines import TimelinePlan
from model.writers import MemoryWriter, NeuralWriter, TrainWrite, make_writer

#: Encoder tokens (queries x tokens per query) per forward pass in ``answer``.
DEFAULT_ANSWER_TOKENS = 1 << 17
#: The longest window a chunk of questions pads to, as a multiple of its shortest.
LENGTH_SPREAD = 2


class LongVMNet(nn.Module):
    """The whole model, built from a ``ModelConfig``.

    Submodules: ``backbone`` (frozen timm model), ``sampler`` (the neural writer's scoring
    network), ``encoder_decoder`` and the three heads. ``writer`` is the memory-writing
    algorithm named by ``cfg.writer`` (it has no weights of its own).
    """

    def __init__(self, cfg: ModelConfig, *, pretrained_backbone: bool = True) -> None:
        """``pretrained_backbone``: load ``cfg.backbone_weights_file`` (if set) into the
        backbone; ``load`` turns it off because the checkpoint carries the backbone."""
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg, load_weights=pretrained_backbone)
        self.sampler = NeuralSampler(cfg)
        self.encoder_decoder = EncoderDecoder(cfg)
        self.activity_head = ActivityHead(cfg)
        self.box_head = BoxHead(cfg)
        self.time_head = TimeHead(cfg)
        self.writer: MemoryWriter = make_writer(cfg.writer, cfg, self.sampler)
        self.object_tokens = ObjectTokenCache()
        # names this instance to the memories it prepares (``PreparedMemory.model_key``)
        self.instance_key = uuid.uuid4().hex

    @property
    def device(self) -> torch.device:
        return next(self.sampler.parameters()).device

    def fit_token_standardisation(self, videos: Iterable[Tensor]) -> None:
        """Set both token projections' channel statistics from ``videos``' backbone
        tokens (each ``(N, S, C)``): the training videos (``cfg.token_standardisation``)."""
        mean, std = channel_statistics(videos)  # (C,), (C,)
        with torch.no_grad():
            for projection in (self.sampler.project, self.encoder_decoder.project):
                projection.set_channel_statistics(mean.to(self.device), std.to(self.device))

    def use_writer(self, name: str) -> None:
        """Write with another writer from now on (ablations); the config records it."""
        self._reconfigure_writer(writer=name)

    def resize_memory(self, memory_size: int) -> None:
        """Keep ``memory_size`` tokens per session from now on; the config records it.

        No weight depends on m (the sampler scores each candidate, the encoder attends over
        whatever is kept), so a model trained on short sessions with a small memory can
        read long sessions with a larger one: the share of a session it keeps stays alike.
        Memories written before keep their size; do not mix them with new ones.
        """
        self._reconfigure_writer(memory_size=memory_size)

    @torch.no_grad()
    def fit_memory(self, memory: Memory) -> Memory:
        """``memory`` with this model's ``m`` slots, for sessions written under a checkpoint
        of another memory size (an upgrade or a rollback while sessions are live).

        A smaller memory gets empty slots after its tokens: it is then a memory not yet
        full, and nothing it held is lost. A larger one keeps the ``m`` tokens this model's
        writer chooses among them (a write of no new frame: ``frames_seen`` stays).
        """
        m = self.cfg.memory_size
        if memory.size <= m:
            return memory if memory.size == m else memory.padded_to(m)
        cfg, b = self.cfg, memory.batch_size
        nothing = torch.zeros(
            b, cfg.clip_frames, cfg.tokens_per_frame, cfg.backbone_channels, device=self.device
        )
        no_frame = torch.zeros(b, cfg.clip_frames, dtype=torch.bool, device=self.device)
        memory = memory.to(self.device)
        clip = ClipTokens.from_frames(nothing, memory.frames_seen, cfg.clip_frames, no_frame)
        with _evaluating(self.sampler):
            return self.writer.write(memory, clip)

    @property
    def write_features(self) -> int:
        """Width of the sampler inputs a memory carries from one write to the next
        (``Memory.features``); 0 where the writer keeps none."""
        return self.cfg.d_model if isinstance(self.writer, NeuralWriter) else 0

    @torch.no_grad()
    def with_write_features(self, memory: Memory) -> Memory:
        """``memory`` carrying each slot's sampler input as a write leaves it: a memory read
        back from storage, before it joins sessions that keep theirs (``app.ingest.pool``)."""
        if not isinstance(self.writer, NeuralWriter) or memory.features is not None:
            return memory
        memory = memory.to(self.device)
        with _evaluating(self.sampler):
            return dataclasses.replace(memory, features=self.writer.features(memory))

    def set_sampler_window(self, window: int) -> None:
        """Read the sampler's candidates in blocks of ``window`` (-1: all at once) from now
        on (``ModelConfig.sampler_window``); the config records it. No weight depends on it:
        it decides which candidates each one hears when scored."""
        self.cfg = dataclasses.replace(self.cfg, sampler_window=window)  # validates
        self.sampler.window = window

    def set_answering(self, **changes: Any) -> None:
        """Record config ``changes`` that only the answers read (``time_answers``, the
        activity calibration): no weight and no memory depends on them."""
        allowed = {"time_answers", "activity_logit_scale", "activity_logit_bias"}
        if unknown := sorted(set(changes) - allowed):
            raise ValueError(f"{unknown} are not answering settings; use resize_memory/use_writer.")
        self.cfg = dataclasses.replace(self.cfg, **changes)

    def _reconfigure_writer(self, **changes: Any) -> None:
        """Record weight-free config ``changes`` and rebuild the writer that depends on them."""
        self.cfg = dataclasses.replace(self.cfg, **changes)
        self.writer = make_writer(self.cfg.writer, self.cfg, self.sampler)

    # ================================================================== stage 1: memory
    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray | Tensor, run: BackboneRun = PER_CLIP) -> Tensor:
        """Backbone tokens ``(B, T, S, C)`` of RGB uint8 frames ``(B, T, H, W, 3)``.

        By default each session's clip is one backbone call of its own; ``run`` batches
        sessions in fixed-shape micro-batches instead (``model/backbone_run.py``). Either way
        a session's tokens do not depend on the other sessions of ``frames``.
        """
        x = torch.as_tensor(frames)
        if x.dim() != 5:
            raise ValueError(f"Frames must be (B, T, H, W, 3), got {tuple(x.shape)}.")
        return torch.stack(self.encode_clips(list(x), run))  # (B, T, S, C)

    def encode_clips(
        self, clips: Sequence[np.ndarray | Tensor], run: BackboneRun = PER_CLIP
    ) -> list[Tensor]:
        """Backbone tokens ``(T_i, S, C)`` of clips ``(T_i, H_i, W_i, 3)`` of any lengths and
        frame sizes (sessions whose cameras differ), run as ``run`` says."""
        # frames go to the device a clip at a time, inside the backbone's preprocessing:
        # a thousand sessions' raw clips at once would not fit on it
        return run.encode(self.backbone, [torch.as_tensor(clip) for clip in clips])

    def write_tokens(
        self,
        memory: Memory | None,
        tokens: Tensor,
        frame_mask: Tensor | None = None,
    ) -> Memory:
        """Inference write of one clip per session: deterministic, no noise, no gradient.

        Args:
            memory: the sessions' memories, or None to start new ones.
            tokens: ``(B, T, S, C)`` backbone tokens (``T <= cfg.clip_frames``).
            frame_mask: ``(B, T)`` bool, False for missing frames at the end of a clip.
        Returns:
            The new memories (``m`` slots each, ``frames_seen`` advanced by the real frames).
        """
        clip, memory = self._clip(memory, tokens, frame_mask)
        with _evaluating(self.sampler):
            return self.writer.write(memory, clip)

    def write_tokens_train(
        self,
        memory: Memory | None,
        tokens: Tensor,
        *,
        temperature: float,
        frame_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> TrainWrite:
        """Training write: Gumbel-perturbed, relaxed selection with straight-through weights.

        Returns the new memory, whose kept tokens are multiplied by their weights (1.0 in
        value, so the loss on answers reaches the sampler's scores), those weights
        ``(B, m)``, the candidates and the sampler's scores (``TrainWrite``). Detach the
        memory before the next step's write (``Memory.detach``).
        """
        clip, memory = self._clip(memory, tokens, frame_mask)
        return self.writer.write_train(memory, clip, temperature=temperature, generator=generator)

    def write(
        self,
        memory: Memory | None,
        frames: np.ndarray | Tensor,
        frame_mask: Tensor | None = None,
    ) -> Memory:
        """``encode_frames`` then ``write_tokens``: frames ``(B, T, H, W, 3)`` RGB uint8."""
        return self.write_tokens(memory, self.encode_frames(frames), frame_mask)

    def populate(
        self,
        video_frames: np.ndarray | Tensor,
        frame_mask: Tensor | None = None,
        memory: Memory | None = None,
    ) -> Memory:
        """Read whole videos ``(B, N, H, W, 3)`` once, in non-overlapping clips of T frames.

        ``frame_mask`` ``(B, N)`` marks real frames (shorter videos padded at the end).
        """
        video = torch.as_tensor(video_frames)
        t = self.cfg.clip_frames
        for first in range(0, video.shape[1], t):
            mask = None if frame_mask is None else frame_mask[:, first : first + t]
            memory = self.write(memory, video[:, first : first + t], mask)
        if memory is None:
            raise ValueError("populate needs a video of at least one frame.")
        return memory

    def _clip(
        self, memory: Memory | None, tokens: Tensor, frame_mask: Tensor | None
    ) -> tuple[ClipTokens, Memory]:
        cfg = self.cfg
        if tokens.dim() != 4 or tokens.shape[2:] != (cfg.tokens_per_frame, cfg.backbone_channels):
            raise ValueError(
                f"Tokens must be (B, T, {cfg.tokens_per_frame}, {cfg.backbone_channels}), "
                f"got {tuple(tokens.shape)}."
            )
        if memory is None:
            memory = Memory.empty(cfg, tokens.shape[0], device=self.device)
        if memory.batch_size != tokens.shape[0] or memory.size != cfg.memory_size:
            raise ValueError(
                f"Memory holds {memory.batch_size} sessions of {memory.size} slots; expected "
                f"{tokens.shape[0]} of {cfg.memory_size}."
            )
        memory = memory.to(self.device)
        tokens = tokens.to(self.device)
        clip = ClipTokens.from_frames(tokens, memory.frames_seen, cfg.clip_frames, frame_mask)
        return clip, memory

    # ================================================================== stage 2: answers
    def forward(self, memory: Memory, queries: Sequence[Query]) -> QueryOutputs:
        """Raw, differentiable outputs for a batch of mixed queries (see ``forward_queries``)."""
        return self._forward(
            self.encoder_decoder.project_memory(memory), queries, range(len(queries))
        )

    def forward_queries(self, memory: Memory, queries: Sequence[Query]) -> QueryOutputs:
        """Raw outputs (logits, boxes, start/end logits) grouped by kind, for the losses."""
        return self(memory, queries)

    @torch.no_grad()
    def prepare(self, memory: Memory) -> PreparedMemory:
        """The query-independent part of answering on ``memory``'s sessions, done once:
        tokens projected to the model width and, with ``query_fusion == "decoder"``,
        encoded. ``answer`` takes it in place of the memory."""
        with _evaluating(self):
            projected = self.encoder_decoder.project_memory(memory.to(self.device))
        return PreparedMemory(projected, self.instance_key)

    @torch.no_grad()
    def answer(
        self,
        memory: Memory | PreparedMemory,
        queries: Sequence[Query],
        *,
        max_tokens: int = DEFAULT_ANSWER_TOKENS,
        share_timelines: bool = True,
    ) -> list[Prediction]:
        """Predictions for mixed queries, in query order, from the memory alone.

        Queries are grouped by kind and run in batches of at most ``max_tokens`` encoder
        tokens; the memory is prepared (``prepare``) once for all of them unless it comes
        prepared, and identical object images go through the backbone once. With
        ``share_timelines``, long activity windows (and time questions answered from
        activity steps) are read from one decoding of their session per product, kept
        with the prepared memory (``model.timelines``): the same answers up to float
        rounding, for a fraction of the steps.
        """
        if isinstance(memory, Memory):
            memory = self.prepare(memory)
        elif memory.model_key != self.instance_key:
            raise ValueError("This memory was prepared by another model; prepare it again.")
        asked = list(queries)
        if self.cfg.time_answers == "activity_steps":
            # a time question is asked as the activity question of its product and window,
            # and answered from the per-step answer of its activity (``time_from_steps``)
            asked = [as_activity_query(q) if isinstance(q, TimeQuery) else q for q in queries]
        margin = self._timeline_margin() if share_timelines else 0
        with self.object_tokens.fixed_backbone(self.backbone):  # no step changes weights
            answered = self._answer_asked(memory, asked, max_tokens, margin)
        return [
            time_from_steps(query, answer)
            if isinstance(query, TimeQuery) and isinstance(answer, ActivityPrediction)
            else answer
            for query, answer in zip(queries, answered, strict=True)
        ]

    def _answer_asked(
        self, memory: PreparedMemory, asked: Sequence[Query], max_tokens: int, margin: int
    ) -> list[Prediction]:
        """``answer``'s predictions, long activity windows read from timelines when
        ``margin`` (M) > 0."""
        if not margin:
            return self._predict(memory, asked, max_tokens)
        seen = memory.memory.frames_seen.tolist()
        plan = TimelinePlan.of(asked, seen, margin, memory.timelines, self.object_tokens.key)
        for key, whole in plan.missing.items():  # alone: the same bits whatever is asked
            [timeline] = self._predict(memory, [whole], max_tokens)
            assert isinstance(timeline, ActivityPrediction) and timeline.steps is not None
            plan.add(key, timeline.steps)
            row, image = key
            memory.timelines[row].put(image, timeline.steps)  # for later questions
        return plan.assemble(self._predict(memory, plan.queries, max_tokens))

    def _predict(
        self, memory: PreparedMemory, queries: Sequence[Query], max_tokens: int
    ) -> list[Prediction]:
        """Each query's prediction, in order, batched by kind and window (``_batches``)."""
        predictions: list[Prediction | None] = [None] * len(queries)
        projected = memory.memory
        window_slots = self._reads_window_slots() and projected.in_time_order()  # once
        with _evaluating(self):
            for rows in self._batches(queries, max_tokens):
                outputs = self._forward(projected, queries, rows, window_slots=window_slots)
                for row, prediction in _decode(outputs, queries, self.cfg):
                    predictions[row] = prediction
        answered = [p for p in predictions if p is not None]
        assert len(answered) == len(queries)  # every row is in one of the batches
        return answered

    def _timeline_margin(self) -> int:
        """M, the steps next to a window's edge that its edges change (``model.timelines``):
        decoder layers x decoder self radius; 0 when every step reads the whole window."""
        cfg = self.cfg
        if cfg.decoder_self_radius < 0:
            return 0
        return cfg.decoder_layers * cfg.decoder_self_radius

    def _batches(self, queries: Sequence[Query], max_tokens: int) -> Iterator[list[int]]:
        """Rows of ``queries`` grouped by kind and window length, in chunks that fit
        ``max_tokens`` encoder tokens.

        Within a kind, rows go shortest window first, and a chunk ends where a window is
        more than ``LENGTH_SPREAD`` times the chunk's first: a chunk is padded to its
        longest window and its decoder's self-attention grows with the square of it, so
        mixing a 10 s and a 30 min question would make both cost 30 min and more.
        """
        cfg = self.cfg
        sizes = {
            ActivityQuery: cfg.memory_size + cfg.tokens_per_frame,
            ObjectQuery: cfg.memory_size + 1,
            TimeQuery: cfg.memory_size + cfg.tokens_per_frame + 1,
        }
        for kind, per_query in sizes.items():
            rows = sorted(
                (i for i, q in enumerate(queries) if isinstance(q, kind)),
                key=lambda i: (_length(queries[i]), i),
            )
            most = max(1, max_tokens // per_query)
            chunk: list[int] = []
            for row in rows:
                if chunk and (
                    len(chunk) == most
                    or _length(queries[row]) > LENGTH_SPREAD * _length(queries[chunk[0]])
                ):
                    yield chunk
                    chunk = []
                chunk.append(row)
            if chunk:
                yield chunk

    def _forward(
        self,
        projected: Memory,
        queries: Sequence[Query],
        rows: Sequence[int],
        *,
        window_slots: bool = False,
    ) -> QueryOutputs:
        """Outputs for ``queries[rows]``, given the memory already projected to ``d``;
        ``window_slots``: each query reads only its window's slots (``_query_memory``)."""
        out = QueryOutputs()
        for kind in (ActivityQuery, ObjectQuery, TimeQuery):
            kind_rows = [r for r in rows if isinstance(queries[r], kind)]
            if not kind_rows:
                continue
            batch = [queries[r] for r in kind_rows]
            index = [self._memory_index(q, projected) for q in batch]
            steps, step_mask = _window_steps(batch, self.device)
            objects: Tensor | ObjectInputs | None = None
            if kind is not ObjectQuery:
                images = [q.object_image for q in batch if not isinstance(q, ObjectQuery)]
                objects = self._object_inputs(images)
            activity = None
            if kind is not ActivityQuery:
                activity = torch.tensor(
                    [self._activity(q) for q in batch if not isinstance(q, ActivityQuery)],
                    device=self.device,
                )
            decoded = self.encoder_decoder(
                self._query_memory(projected, index, batch, window_slots),
                steps,
                step_mask,
                objects,
                activity,
            )  # (N, L, d)
            if kind is ActivityQuery:
                step_logits = self.activity_head.step_logits(decoded)  # (N, L, A)
                logits = self.activity_head.pool(step_logits, step_mask)  # (N, A)
                out.activity = ActivityOutputs(kind_rows, logits, step_logits, step_mask)
            elif kind is ObjectQuery:
                out.object = ObjectOutputs(kind_rows, self.box_head(decoded), step_mask)
            else:
                start, end = self.time_head(decoded)
                out.time = TimeOutputs(kind_rows, start, end, step_mask)
        return out

    @torch.no_grad()
    def encode_object_images(self, images: Sequence[Image]) -> Tensor:
        """Backbone tokens ``(N, S, C)`` of object images (RGB uint8 ``(H, W, 3)`` each).

        Each distinct image (by content) goes through the backbone once while its weights
        stay the same (``model.object_token_cache``): "which product" asks many questions
        about few images.
        """
        tokens = self.object_tokens.tokens(self.backbone, images, self._encode_image)
        return torch.stack(tokens)  # (S, C) each -> (N, S, C)

    def _encode_image(self, picture: Tensor) -> Tensor:
        """One picture ``(H, W, 3)`` alone through the backbone: ``(S, C)``."""
        return self.backbone(picture[None].to(self.device))[0]

    def _object_inputs(self, images: Sequence[Image]) -> Tensor | ObjectInputs:
        """The questions' catalog images as the encoder-decoder reads them: in inference
        each image's ``ObjectInputs`` made once and kept with its tokens (two thirds of
        the work a batch of answers did on its images); otherwise their tokens."""
        if self.encoder_decoder.training or torch.is_grad_enabled():
            return self.encode_object_images(images)
        coder = self.encoder_decoder
        each = self.object_tokens.derived(
            self.backbone,
            images,
            self._encode_image,
            # laid out as ``torch.stack`` lays a batch's (the mean sums in that order)
            lambda tokens: coder.object_inputs(tokens.contiguous()[None]),  # (1, S, d), (1, C)
            [*coder.project.parameters(), *coder.project.buffers()],
        )
        return ObjectInputs.stack(each)

    def _reads_window_slots(self) -> bool:
        """Whether a question reads only the memory near its window, and nothing before the
        decoder mixes rows: questions fused in the decoder, a decoder time radius, no
        glance over the whole memory."""
        cfg = self.cfg
        return (
            cfg.query_fusion == "decoder" and cfg.decoder_time_radius >= 0 and not cfg.glance_layers
        )

    def _query_memory(
        self, projected: Memory, index: list[int], batch: Sequence[Query], window_slots: bool
    ) -> Memory:
        """Each query's session of the prepared memory, ``(N, m, D)``; or, with
        ``window_slots`` (``answer``: ``_reads_window_slots`` and a memory in time order),
        only its slots that some window step reads, ``(N, U, D)``.

        A window [s, e) then reads only the memory tokens of steps s - r .. e - 1 + r
        (``LocalKeys.near``), and everything done to a memory row before the decoder reads
        it is that row's own (the question's product and activity mixed in, a layer norm).
        Taking those slots first, in the same order, gives the same answers up to float
        rounding (a matrix product over fewer rows may sum in another order) without fusing
        the question into thousands of rows no step reads. Inference only (``answer``):
        training keeps the computation its recipe was measured with.
        """
        sessions = torch.tensor(index, device=self.device)
        if not window_slots:
            return projected.select(sessions)
        r = self.cfg.decoder_time_radius
        lowest = torch.tensor([q.start - r for q in batch], device=self.device)
        highest = torch.tensor([q.end - 1 + r for q in batch], device=self.device)
        return projected.slots_between(sessions, lowest, highest)

    def _memory_index(self, query: Query, memory: Memory) -> int:
        if not 0 <= query.memory_index < memory.batch_size:
            raise IndexError(
                f"Query memory_index {query.memory_index} is outside the memory batch "
                f"of {memory.batch_size} sessions."
            )
        return query.memory_index

    def _activity(self, query: ObjectQuery | TimeQuery) -> int:
        if not 0 <= query.activity < self.cfg.num_activities:
            raise IndexError(
                f"Activity {query.activity} is outside the {self.cfg.num_activities} classes."
            )
        return query.activity

    # ================================================================== checkpoints
    def save(self, directory: str | Path) -> Path:
        """Write ``DIR/config.json`` and ``DIR/model.safetensors`` (see ``model.checkpoint``)."""
        return write_checkpoint(directory, self.cfg, self)

    @classmethod
    def load(cls, directory: str | Path, *, device: torch.device | str | None = None) -> LongVMNet:
        """The network saved in ``directory``; the architecture comes from its config file.

        Returned in eval mode, on ``device`` (default CPU).
        """
        net = cls(read_config(directory), pretrained_backbone=False)
        read_weights(net, directory, "cpu")
        return net.to(device or "cpu").eval()


def _length(query: Query) -> int:
    return query.end - query.start


def _window_steps(queries: Sequence[Query], device: torch.device) -> tuple[Tensor, Tensor]:
    """Session steps ``(N, L)`` of each window, padded to the longest, and the real-step mask."""
    lengths = torch.tensor([q.end - q.start for q in queries], device=device)
    starts = torch.tensor([q.start for q in queries], device=device)
    offsets = torch.arange(int(lengths.max()), device=device)
    step_mask = offsets[None, :] < lengths[:, None]  # (N, L)
    return starts[:, None] + offsets[None, :], step_mask


def _decode(
    outputs: QueryOutputs, queries: Sequence[Query], cfg: ModelConfig
) -> Iterator[tuple[int, Prediction]]:
    """Turn raw outputs into per-query predictions (numpy, on the CPU); activity
    probabilities through the config's calibration (``model.calibration``)."""
    if outputs.activity is not None:
        scale, bias = cfg.activity_logit_scale, cfg.activity_logit_bias
        logits = outputs.activity.logits.float() * scale + bias  # (N, A)
        probabilities = logits.sigmoid().cpu().numpy()
        step_logits = outputs.activity.step_logits
        per_step = None
        if step_logits is not None:
            per_step = (step_logits.float() * scale + bias).sigmoid().cpu().numpy()  # (N, L, A)
        for i, row in enumerate(outputs.activity.rows):
            q = queries[row]
            if per_step is None:
                yield row, ActivityPrediction(probabilities[i], None)
                continue
            steps = per_step[i, : q.end - q.start].copy()
            # the window's answer is its most probable step's, taken from the steps so that
            # it equals them to the bit: sigmoid's vector and scalar paths round apart
            yield row, ActivityPrediction(steps.max(axis=0), steps)
    if outputs.object is not None:
        boxes = outputs.object.boxes.float().cpu().numpy()
        for i, row in enumerate(outputs.object.rows):
            q = queries[row]
            yield row, ObjectPrediction(boxes[i, : q.end - q.start].copy())
    if outputs.time is not None:
        start_logits = outputs.time.start_logits.cpu()
        end_logits = outputs.time.end_logits.cpu()
        for i, row in enumerate(outputs.time.rows):
            q = queries[row]
            n = q.end - q.start
            s, e, p = decode_time(start_logits[i, :n], end_logits[i, :n])
            yield row, TimePrediction(q.start + s, q.start + e, p)


def as_activity_query(query: TimeQuery) -> ActivityQuery:
    return ActivityQuery(query.memory_index, query.object_image, query.start, query.end)


def time_from_steps(query: TimeQuery, answer: ActivityPrediction) -> TimePrediction:
    """When the query's activity happened, read from the per-step activity answer: the
    steps around its most probable step that stay at least half as probable (one event;
    an activity lasts a few seconds). The score is the peak's probability."""
    assert answer.steps is not None  # activity answers always carry their steps
    p = answer.steps[:, query.activity]  # (L,)
    peak = int(np.argmax(p))
    first = last = peak
    while first > 0 and p[first - 1] >= 0.5 * p[peak]:
        first -= 1
    while last + 1 < len(p) and p[last + 1] >= 0.5 * p[peak]:
        last += 1
    return TimePrediction(query.start + first, query.start + last + 1, float(p[peak]))


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in eval mode (no dropout) and restore its mode afterwards.

    A module in eval mode is taken as it is (``train``/``eval`` set every submodule):
    switching it again walked ~600 modules twice through nn.Module's ``__setattr__`` on
    every batch of answers (2 ms a call here)."""
    if not module.training:
        yield
        return
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
