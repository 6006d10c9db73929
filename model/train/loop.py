"""The training loop (paper Sec. 3), made of named helpers.

Per epoch: every video's memory starts empty (reset each epoch, paper); batches come from
``epoch_batches`` (one item per video per batch, each video's clips in time order). A step:

1. ``clip_batch`` / ``gather_memories``: the next clip of each batch video and its memory;
2. ``write_tokens_train``: Gumbel-perturbed, relaxed write of the clip into the memory
   (and, when the config weighs it, the sampler's evidence loss: ``candidate_evidence``);
3. ``batch_queries``: the current queries of each video plus its last ``p`` (online
   continual loss, p = 2) and a few ``replayed`` older ones — all answered from the memory
   just written;
4. losses, backward, clip, step; the new memories are kept detached for the next clip.

At the end of each epoch: evaluation on the validation split (one JSON line of metrics),
then the model checkpoint and the training state are written to the output directory, so
it is always a loadable checkpoint and a resumable run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from model.candidates import Candidates
from model.checkpoint import read_config, read_weights
from model.config import ModelConfig
from model.data.batches import Step, epoch_batches
from model.data.examples import Example
from model.data.split import SplitData, load_split
from model.data.token_cache import TokenCache, default_cache_dir
from model.evaluate.two_stage import evaluate
from model.losses import loss_weights, query_losses, sampler_evidence_loss, weighted_sum
from model.memory import Memory
from model.network import LongVMNet
from model.queries import Query, Target
from model.synth.reader import read_dataset
from model.train.config import TrainConfig
from model.train.optim import make_optimizer, set_lr
from model.train.schedule import lr_factor, temperature
from model.train.state import Position, load_state, save_state
from model.train.time_shift import AT_ZERO, draw_offsets, shift_query, shift_target

TRAIN_CONFIG_FILE = "train_config.json"
METRICS_FILE = "metrics.jsonl"

#: Receives each evaluation's metrics record (one JSON line's worth).
Logger = Callable[[dict[str, Any]], None]
#: ``progress(done, total)`` over the batches of the current epoch.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainResult:
    out: Path
    epochs: int  # completed so far (all of them unless ``stop_after`` ended the call early)
    steps: int
    seconds: float
    last: dict[str, Any]  # the last metrics record


#: Where the mixer's weights live: what another mixer builds anew.
ENCODER_LAYERS = ("sampler.encoder.layers.", "encoder_decoder.encoder.layers.")
#: What only a model fusing the question in the decoder has.
DECODER_FUSION_LAYERS = ("encoder_decoder.fused_norm.", "encoder_decoder.glance.")
#: What only a model standardising its tokens' channels has (fit by ``train``).
CHANNEL_STATISTICS = (
    "sampler.project.channel_",
    "encoder_decoder.project.channel_",
)


def build_net(
    config: TrainConfig,
    *,
    resume: Path | None = None,
    init: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> LongVMNet:
    """The network to train: from ``resume`` or ``init`` (a checkpoint) or a fresh preset.

    ``init`` takes a checkpoint's weights (e.g. a backbone pretrained on the store domain);
    ``overrides`` replace ``ModelConfig`` fields of the preset or of ``init``'s config.
    The writer is always the one the run trains with.
    """
    if resume is not None:
        net = LongVMNet.load(resume)  # the run goes on exactly as it was configured
    elif init is not None:
        # Weights from ``init``; overrides may change what does not shape them (loss weights),
        # the mixer, whose encoder layers then start fresh, and where questions meet the
        # memory (the backbone and the product match, what pretraining teaches, still come
        # from ``init``)
        start = read_config(init)
        cfg = dataclasses.replace(start, **(overrides or {}))
        net = LongVMNet(cfg, pretrained_backbone=False)
        fresh: tuple[str, ...] = () if cfg.mixer == start.mixer else ENCODER_LAYERS
        if (cfg.query_fusion, cfg.glance_layers) != (start.query_fusion, start.glance_layers):
            fresh += DECODER_FUSION_LAYERS
        if cfg.token_standardisation != start.token_standardisation:
            fresh += CHANNEL_STATISTICS
        read_weights(net, init, "cpu", fresh=fresh)
    else:
        net = LongVMNet(ModelConfig.preset(config.preset, **(overrides or {})))
    if net.cfg.writer != config.writer:
        net.use_writer(config.writer)
    return net


def train(
    data: Path,
    out: Path,
    config: TrainConfig,
    *,
    resume: Path | None = None,
    init: Path | None = None,
    overrides: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
    device: str | None = None,
    stop_after: int | None = None,
    log: Logger | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train on ``data``'s train split, evaluate on its val split, write to ``out``.

    Args:
        resume: an output directory of an earlier run: model, optimizer, position and
            random states continue from its last completed epoch.
        init: a checkpoint to start from (weights only; the optimizer starts fresh).
        overrides: ``ModelConfig`` fields replaced in the preset or ``init``'s config.
        stop_after: end this call after that many epochs (the run stays resumable).
    """
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    net = build_net(config, resume=resume, init=init, overrides=overrides)
    where = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net.to(where)
    dataset = read_dataset(Path(data))
    cache = TokenCache(cache_dir or default_cache_dir(Path(data)), net.cfg, net.backbone)
    train_data = load_split(dataset, "train", net.cfg, cache, swap_fraction=config.swap_negatives)
    if _fits_channel_statistics(net, resume, init):
        net.fit_token_standardisation(train_data.tokens.values())
    val_data = None
    if dataset.splits.get("val"):
        val_data = load_split(dataset, "val", net.cfg, cache, swap_fraction=1.0)

    optimizer = make_optimizer(net, config)
    rng = np.random.default_rng(config.seed)
    gumbel = torch.Generator(where).manual_seed(config.seed)
    position = Position(0, 0)
    if resume is not None:
        position = load_state(Path(resume), optimizer, rng, gumbel)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / TRAIN_CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    step, epochs_done, record = position.step, position.epoch, {}
    last = config.epochs if stop_after is None else position.epoch + stop_after
    for epoch in range(position.epoch, min(last, config.epochs)):
        means, tau, steps = run_epoch(
            net, optimizer, train_data, epoch, config, rng, gumbel, progress
        )
        step, epochs_done = step + steps, epoch + 1
        record = {
            "epoch": epoch + 1,
            "step": step,
            "seconds": round(time.perf_counter() - began, 1),
            "temperature": round(tau, 4),
            "lr": {g["name"]: g["lr"] for g in optimizer.param_groups},
            "train": means,
        }
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            if val_data is not None:
                record["val"] = evaluate(net, val_data).summary.percent
            _emit(out, record, log)  # one JSON line per evaluation
        net.save(out)
        save_state(out, optimizer, Position(epoch + 1, step), rng, gumbel, config.to_dict())
    if position.epoch >= config.epochs:
        net.save(out)  # a finished run resumed: nothing to train, still leave a checkpoint
    return TrainResult(out, epochs_done, step, time.perf_counter() - began, record)


def _fits_channel_statistics(net: LongVMNet, resume: Path | None, init: Path | None) -> bool:
    """Whether the run standardises tokens with statistics it has not read: from a preset,
    or from an ``init`` that did not standardise (a resumed run keeps its own)."""
    if not net.cfg.token_standardisation or resume is not None:
        return False
    return init is None or not read_config(init).token_standardisation


def run_epoch(
    net: LongVMNet,
    optimizer: torch.optim.Optimizer,
    data: SplitData,
    epoch: int,
    config: TrainConfig,
    rng: np.random.Generator,
    gumbel: torch.Generator,
    progress: Progress | None = None,
) -> tuple[dict[str, float], float, int]:
    """One pass over every training video from empty memories (reset each epoch, paper).

    Returns the mean of each loss term, the last temperature and the number of steps.
    """
    lengths = {v: int(t.shape[0]) for v, t in data.tokens.items()}
    batches = epoch_batches(
        lengths, data.examples, net.cfg.clip_frames, config.batch_size, rng, config.queries_per_clip
    )
    memories: dict[str, Memory] = {}
    past: dict[str, deque[Example]] = {}
    history: dict[str, list[Example]] = {}
    offsets = draw_offsets(lengths, config.time_shift, rng)
    meter = _Meter()
    tau = temperature(config, epoch / config.epochs)
    net.train()
    for i, batch in enumerate(batches):
        done = (epoch + i / len(batches)) / config.epochs  # progress through the whole run
        set_lr(optimizer, lr_factor(config, done))
        tau = temperature(config, done)
        replay = replayed(batch, history, past, config.replay, rng)
        meter.add(
            train_step(
                net, optimizer, batch, data, memories, past, tau, gumbel, config, replay, offsets
            )
        )
        remember_all(history, batch)
        if progress is not None:
            progress(i + 1, len(batches))
    return meter.means(), tau, len(batches)


def train_step(
    net: LongVMNet,
    optimizer: torch.optim.Optimizer,
    batch: Sequence[Step],
    data: SplitData,
    memories: dict[str, Memory],
    past: dict[str, deque[Example]],
    tau: float,
    gumbel: torch.Generator,
    config: TrainConfig,
    replay: dict[str, list[Example]] | None = None,
    offsets: Mapping[str, int] = AT_ZERO,
) -> dict[str, float]:
    """One optimizer step on one batch; updates ``memories`` and ``past`` in place.

    ``replay``: earlier queries of each video asked again (see ``replayed``); ``offsets``:
    where each video starts on the training timeline (``model.train.time_shift``).
    """
    device = net.device
    tokens, frame_mask = clip_batch(data, batch, net.cfg.clip_frames, device)
    memory = gather_memories(memories, batch, net.cfg, device, offsets)
    queries, targets = batch_queries(batch, past, replay, offsets)
    with _autocast(device, config.amp):
        write = net.write_tokens_train(
            memory, tokens, temperature=tau, frame_mask=frame_mask, generator=gumbel
        )
        written = write.memory
        losses = query_losses(net.forward_queries(written, queries), queries, targets)
        if write.scores is not None and net.cfg.loss_sampler_evidence > 0:
            evidence, known = candidate_evidence(data, batch, write.candidates, offsets)
            losses["sampler_evidence"] = sampler_evidence_loss(write.scores, evidence, known)
    values: dict[str, float] = {}
    if losses:
        loss = weighted_sum({k: v.float() for k, v in losses.items()}, loss_weights(net.cfg))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            [p for g in optimizer.param_groups for p in g["params"]], config.grad_clip
        )
        optimizer.step()
        values = {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}
    keep_memories(memories, batch, written.detach())
    remember(past, batch, config.past)
    return values


def clip_batch(
    data: SplitData, batch: Sequence[Step], clip_frames: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Each item's clip: tokens ``(B, T, S, C)``, zero-padded, and real-frame mask ``(B, T)``."""
    clips, masks = [], []
    for item in batch:
        video = data.tokens[item.video_id]
        clip = video[item.clip * clip_frames : (item.clip + 1) * clip_frames]  # (t, S, C)
        pad = clip_frames - clip.shape[0]
        clips.append(torch.cat((clip, clip.new_zeros(pad, *clip.shape[1:]))))
        masks.append(torch.arange(clip_frames) < clip.shape[0])
    return torch.stack(clips).to(device), torch.stack(masks).to(device)


def candidate_evidence(
    data: SplitData,
    batch: Sequence[Step],
    cand: Candidates,
    offsets: Mapping[str, int] = AT_ZERO,
) -> tuple[Tensor, Tensor]:
    """Whether each candidate token shows its video's handled product ``(B, n)`` and
    whether that is known ``(B, n)`` (a valid token of a video annotated with boxes).
    ``offsets``: each video's start on the training timeline, taken off its time indices."""
    evidence = torch.zeros(cand.valid.shape, dtype=torch.bool)
    known = torch.zeros(cand.valid.shape, dtype=torch.bool)
    time_index, spatial_index, valid = (
        cand.time_index.cpu(),
        cand.spatial_index.cpu(),
        cand.valid.cpu(),
    )
    for i, item in enumerate(batch):
        cells = data.handled.get(item.video_id)  # (N, S) bool
        if cells is None:
            continue
        start = offsets.get(item.video_id, 0)
        steps = (time_index[i] - start).clamp(0, cells.shape[0] - 1)
        evidence[i] = cells[steps, spatial_index[i]] & valid[i]
        known[i] = valid[i]
    return evidence.to(cand.valid.device), known.to(cand.valid.device)


def gather_memories(
    memories: dict[str, Memory],
    batch: Sequence[Step],
    cfg: ModelConfig,
    device: torch.device,
    offsets: Mapping[str, int] = AT_ZERO,
) -> Memory:
    """Each item's video memory, as one batch. At the video's first clip it is empty and
    has seen as many frames as the video's offset on the training timeline (0 by default)."""
    out = []
    for item in batch:
        memory = memories.get(item.video_id)
        if memory is None:
            memory = Memory.empty(cfg, 1, device=device)
            memory.frames_seen += offsets.get(item.video_id, 0)
        out.append(memory)
    return Memory.cat(out)


def batch_queries(
    batch: Sequence[Step],
    past: dict[str, deque[Example]],
    replay: dict[str, list[Example]] | None = None,
    offsets: Mapping[str, int] = AT_ZERO,
) -> tuple[list[Query], list[Target]]:
    """The current queries of each item, its video's last ones and replayed ones, asked of
    row ``i``, moved to the video's place on the training timeline (``offsets``)."""
    queries: list[Query] = []
    targets: list[Target] = []
    replay = replay or {}
    for i, item in enumerate(batch):
        offset = offsets.get(item.video_id, 0)
        again = (*past.get(item.video_id, ()), *replay.get(item.video_id, ()))
        for example in (*item.examples, *again):
            queries.append(shift_query(example.query_at(i), offset))
            targets.append(shift_target(example.target, offset))
    return queries, targets


def keep_memories(memories: dict[str, Memory], batch: Sequence[Step], written: Memory) -> None:
    for i, item in enumerate(batch):
        memories[item.video_id] = written.select([i])


def remember(past: dict[str, deque[Example]], batch: Sequence[Step], p: int) -> None:
    """Each step's first query joins its video's last ``p`` (the oldest drops out), so the
    continual loss reaches ``p`` steps back however many queries a step asks."""
    if p == 0:
        return
    for item in batch:
        if item.examples:
            past.setdefault(item.video_id, deque(maxlen=p)).append(item.examples[0])


def remember_all(history: dict[str, list[Example]], batch: Sequence[Step]) -> None:
    """Every query asked as current joins its video's history (reset each epoch)."""
    for item in batch:
        history.setdefault(item.video_id, []).extend(item.examples)


def replayed(
    batch: Sequence[Step],
    history: dict[str, list[Example]],
    past: dict[str, deque[Example]],
    count: int,
    rng: np.random.Generator,
) -> dict[str, list[Example]]:
    """Up to ``count`` earlier queries of each batch video, drawn from its whole history
    except the last ``p`` (asked anyway).

    Deviation: the paper's continual loss asks only the last p queries, which reach p clips
    back; evaluation asks every query of a video after the whole video is written, so the
    sampler must also learn what to keep for much older questions.
    """
    out: dict[str, list[Example]] = {}
    if count == 0:
        return out
    for item in batch:
        recent = {id(e) for e in past.get(item.video_id, ())}
        older = [e for e in history.get(item.video_id, ()) if id(e) not in recent]
        if older:
            picks = rng.choice(len(older), min(count, len(older)), replace=False)
            out[item.video_id] = [older[int(i)] for i in sorted(picks)]
    return out


@contextlib.contextmanager
def _autocast(device: torch.device, enabled: bool) -> Iterator[None]:
    """bfloat16 autocast on CUDA only (the CPU runs float32)."""
    if enabled and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


class _Meter:
    """Means of the per-step loss values over an epoch."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: round(self.sums[k] / self.counts[k], 5) for k in self.sums}


def _emit(out: Path, record: dict[str, Any], log: Logger | None) -> None:
    with open(out / METRICS_FILE, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
    if log is not None:
        log(record)
