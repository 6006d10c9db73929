"""Speedup (the paper's Table 1 analogue): read once into memory vs re-read per question.

One long synthetic session and Q mixed questions (activity, object and time; short, medium
and long windows, in the dataset's mix), answered two ways on the same machine in one run:

- **per-query baseline** (TubeDETR-style, no memory): for every question, decode the
  question's window from the video file (seek, resample to the memory FPS), run the
  backbone on its frames, then the model's own encoder-decoder and head with the window's
  tokens in place of the sampled memory. As the paper's TubeDETR inference, a long window
  is cut into non-overlapping clips of T frames (T x S tokens, one write's clip)
  that are answered one by one and aggregated; one pass over a whole long window costs
  more (twice as much for an 18-minute window with the shipped ``tiny``, session 16),
  which would flatter cartmem.
- **cartmem**: decode the whole session once, write it into memory clip by clip (backbone,
  then sampler: the steps of ``LongVMNet.populate``, timed apart), then answer all Q
  questions from the memory in batches of the query worker's size, grouped by window
  length (see ``answer_from_memory``).

Both sides include decoding, and both run the model under ``torch.inference_mode`` as the
ingest engine and the answer worker do (plain ``no_grad`` keeps autograd's bookkeeping on
every small tensor: 5-10 % of a write or a batch of answers). cartmem's side runs before
and after the baseline and counts
the mean of the two (load on a shared machine drifts). Where the baseline would take too
long it runs on a random sample of the questions (the first ones of the shuffled list that
every Q takes a prefix of) and its time is scaled to Q; the result says so.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.bench.machine import describe_machine
from app.bench.stopwatch import Stopwatch
from app.bench.synthetic import (
    FULL_SESSION,
    QUICK_SESSION,
    Session,
    SessionSpec,
    cached_session,
    model_query,
    session_frames,
)
from app.bench.video_window import decode_window
from app.model_runtime import LoadedModel, one_network
from model import (
    LongVMNet,
    Memory,
    Prediction,
    Query,
)
from model.rereading import clip_queries, combine, window_memory
from model.synth import QueryRecord

PHASES = ("decode", "backbone", "sampler", "answer")


@dataclass(frozen=True)
class SpeedupPlan:
    session: SessionSpec
    questions: tuple[int, ...]  # Q values, each a prefix of one shuffled list
    baseline_sample: int  # questions the baseline really runs; larger Q are scaled from them


FULL = SpeedupPlan(FULL_SESSION, questions=(10, 100, 1000), baseline_sample=100)
QUICK = SpeedupPlan(QUICK_SESSION, questions=(10, 100), baseline_sample=20)


@dataclass(frozen=True)
class SideTimes:
    """Seconds one side spent, by phase (the baseline has no sampler: it keeps no memory)."""

    decode_s: float
    backbone_s: float
    sampler_s: float
    answer_s: float
    total_s: float

    @classmethod
    def of(cls, seconds: dict[str, float]) -> SideTimes:
        decode, backbone, sampler, answer = parts = [seconds.get(p, 0.0) for p in PHASES]
        return cls(
            decode_s=round(decode, 4),
            backbone_s=round(backbone, 4),
            sampler_s=round(sampler, 4),
            answer_s=round(answer, 4),
            total_s=round(sum(parts), 4),
        )


@dataclass(frozen=True)
class BaselineQuestion:
    """One question the baseline really ran."""

    kind: str
    bucket: str
    window_s: float
    seconds: SideTimes


@dataclass(frozen=True)
class SpeedupRow:
    questions: int
    cartmem: SideTimes  # mean of its runs before and after the baseline
    cartmem_runs_total_s: list[float]  # before, after
    baseline: SideTimes
    ratio: float  # baseline total / cartmem total
    baseline_timed: int  # questions the baseline ran for this row
    baseline_scaled: bool  # True: baseline = mean of the timed questions x Q
    baseline_relative_stderr: float | None  # of that mean; None when nothing was scaled
    # cross-check of a scaled baseline: timed seconds per window second x the Q windows'
    # seconds (the baseline's cost follows its window length)
    baseline_by_window_total_s: float | None


@dataclass(frozen=True)
class SpeedupResult:
    machine: dict[str, Any]
    preset: str
    device: str
    session_minutes: float
    memory_fps: float
    memory_frames: int
    distinct_questions: int
    mix: dict[str, int]  # "kind/bucket" -> questions among the largest Q
    baseline_mean_window_s: float  # of the questions the baseline ran
    answer_batch: int  # questions per answer call on cartmem's side
    rows: list[SpeedupRow]
    baseline_questions: list[BaselineQuestion]
    benchmark: str = "speedup"


@dataclass(frozen=True)
class _Question:
    record: QueryRecord
    query: Query


def run(
    model: LoadedModel,
    *,
    quick: bool,
    cache: Path,
    batch: int,
    memory_fps: float = 0.0,
    log: Callable[[str], None] = lambda _line: None,
) -> SpeedupResult:
    """Both sides on one session; ``batch``: questions per ``answer`` call on cartmem's side.

    cartmem's side runs before and after the baseline and counts the mean of the two: the
    load of a shared machine drifts during the minutes the baseline takes.
    """
    plan = QUICK if quick else FULL
    machine = describe_machine()
    model, net = one_network(model)  # a pair: its lead
    fps = memory_fps or net.cfg.fps
    session = cached_session(cache, plan.session, log)
    questions = _questions(session, net, fps, max(plan.questions))
    _warm_up(net, session, questions, fps)

    before = _cartmem_side(net, session, questions, plan, batch, fps, log)
    baseline = _baseline_side(net, session, questions[: plan.baseline_sample], fps, log)
    after = _cartmem_side(net, session, questions, plan, batch, fps, log)

    windows = [(x.query.end - x.query.start) / fps for x in questions]
    rows = [_row(q, (before[q], after[q]), baseline, windows[:q]) for q in plan.questions]
    largest = questions[: max(plan.questions)]
    return SpeedupResult(
        machine=machine,
        preset=net.cfg.name,
        device=model.device,
        session_minutes=plan.session.minutes,
        memory_fps=fps,
        memory_frames=session_frames(session, fps),
        distinct_questions=min(len(largest), len(session.questions)),
        mix=_mix(largest),
        baseline_mean_window_s=round(statistics.fmean(b.window_s for b in baseline), 1),
        answer_batch=batch,
        rows=rows,
        baseline_questions=baseline,
    )


def _cartmem_side(
    net: LongVMNet,
    session: Session,
    questions: list[_Question],
    plan: SpeedupPlan,
    batch: int,
    fps: float,
    log: Callable[[str], None],
) -> dict[int, dict[str, float]]:
    """Seconds per phase for each Q: the session read once, then Q questions answered."""
    log(f"cartmem: reading the {plan.session.minutes:g}-minute session once")
    watch = Stopwatch(net.device)
    memory = read_once(net, session.video, session_frames(session, fps), fps, watch)
    read = {p: watch.seconds[p] for p in ("decode", "backbone", "sampler")}
    seconds = {}
    for q in plan.questions:
        with watch.phase(f"answer-{q}"):
            answer_from_memory(net, memory, [x.query for x in questions[:q]], batch)
        seconds[q] = read | {"answer": watch.seconds[f"answer-{q}"]}
        log(f"cartmem: read once + answered {q} questions in {sum(seconds[q].values()):.1f} s")
    return seconds


def _baseline_side(
    net: LongVMNet,
    session: Session,
    timed: list[_Question],
    fps: float,
    log: Callable[[str], None],
) -> list[BaselineQuestion]:
    """Each question re-read and answered on its own, timed per phase."""
    baseline: list[BaselineQuestion] = []
    for i, question in enumerate(timed, start=1):
        clock = Stopwatch(net.device)
        per_query_baseline(net, session.video, question.query, fps, clock)
        window = (question.query.end - question.query.start) / fps
        record = question.record
        baseline.append(
            BaselineQuestion(record.kind, record.bucket, window, SideTimes.of(clock.seconds))
        )
        if i % 10 == 0 or i == len(timed):
            spent = sum(b.seconds.total_s for b in baseline)
            log(f"baseline: {i}/{len(timed)} questions re-read in {spent:.1f} s")
    return baseline


@torch.inference_mode()
def read_once(net: LongVMNet, video: Path, frames: int, fps: float, watch: Stopwatch) -> Memory:
    """cartmem's side: decode the whole session, then backbone and sampler clip by clip."""
    with watch.phase("decode"):
        samples = decode_window(video, 0, frames, fps)
    memory = None
    t = net.cfg.clip_frames
    for first in range(0, frames, t):
        with watch.phase("backbone"):
            tokens = net.encode_frames(samples[None, first : first + t])  # (1, T, S, C)
        with watch.phase("sampler"):
            memory = net.write_tokens(memory, tokens)
    assert memory is not None  # frames >= 1
    return memory


@torch.inference_mode()
def answer_from_memory(
    net: LongVMNet, memory: Memory, queries: Sequence[Query], batch: int
) -> list[Prediction]:
    """cartmem's answers, ``batch`` questions per call, shortest windows first, from the
    memory prepared for questions once (``LongVMNet.prepare``).

    The decoder runs one step per second of a window, and a batch is padded to its longest
    window: ``LongVMNet.answer`` batches by kind only, so one whole-session window among
    short ones makes each of them pay for its 1,800 steps (4x slower over this mix).
    """
    order = sorted(range(len(queries)), key=lambda i: queries[i].end - queries[i].start)
    answers: list[Prediction | None] = [None] * len(queries)
    prepared = net.prepare(memory)  # once, as the query worker keeps it in its cache
    for first in range(0, len(order), batch):
        rows = order[first : first + batch]
        for row, answer in zip(rows, net.answer(prepared, [queries[i] for i in rows]), strict=True):
            answers[row] = answer
    answered = [a for a in answers if a is not None]
    assert len(answered) == len(queries)  # every row is in one batch
    return answered


@torch.inference_mode()
def per_query_baseline(
    net: LongVMNet, video: Path, query: Query, fps: float, watch: Stopwatch
) -> Prediction:
    """The baseline's answer to one question, re-reading its window from the file."""
    t = net.cfg.clip_frames
    with watch.phase("decode"):
        samples = decode_window(video, query.start, query.end, fps)
    with watch.phase("backbone"):
        clips = [net.encode_frames(samples[None, i : i + t]) for i in range(0, len(samples), t)]
    with watch.phase("answer"):
        memory = window_memory(clips, query.start, t)
        return combine(net.answer(memory, clip_queries(query, len(clips), t)))


def _questions(session: Session, net: LongVMNet, fps: float, count: int) -> list[_Question]:
    """The session's first ``count`` questions, repeated when it has fewer."""
    records = [session.questions[i % len(session.questions)] for i in range(count)]
    labels = net.cfg.activity_labels
    return [_Question(r, model_query(r, session, labels=labels, fps=fps)) for r in records]


def _warm_up(net: LongVMNet, session: Session, questions: list[_Question], fps: float) -> None:
    """One untimed pass of every step: the first call of a kernel pays for its setup."""
    clock = Stopwatch(net.device)
    memory = read_once(
        net, session.video, min(net.cfg.clip_frames, session_frames(session, fps)), fps, clock
    )
    short = [dataclasses.replace(x.query, start=0, end=1) for x in questions[:3]]
    net.answer(memory, short)


def _row(
    q: int,
    cartmem_runs: tuple[dict[str, float], dict[str, float]],
    timed: list[BaselineQuestion],
    windows: list[float],
) -> SpeedupRow:
    """Both sides for the first ``q`` questions (``windows``: their lengths in seconds)."""
    measured = timed[:q]
    scale = q / len(measured)
    totals = [b.seconds.total_s for b in measured]
    baseline = {p: scale * sum(getattr(b.seconds, f"{p}_s") for b in measured) for p in PHASES}
    cartmem = {p: statistics.fmean(run.get(p, 0.0) for run in cartmem_runs) for p in PHASES}
    ours, theirs = SideTimes.of(cartmem), SideTimes.of(baseline)
    stderr = by_window = None
    if q > len(measured):
        stderr = statistics.stdev(totals) / math.sqrt(len(totals)) / statistics.fmean(totals)
        by_window = sum(totals) * sum(windows) / sum(b.window_s for b in measured)
    return SpeedupRow(
        questions=q,
        cartmem=ours,
        cartmem_runs_total_s=[round(sum(run.values()), 4) for run in cartmem_runs],
        baseline=theirs,
        ratio=round(theirs.total_s / ours.total_s, 2),
        baseline_timed=len(measured),
        baseline_scaled=q > len(measured),
        baseline_relative_stderr=None if stderr is None else round(stderr, 3),
        baseline_by_window_total_s=None if by_window is None else round(by_window, 2),
    )


def _mix(questions: Sequence[_Question]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for x in questions:
        key = f"{x.record.kind}/{x.record.bucket}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def plot(result: SpeedupResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(result.rows))
    ours = [r.cartmem.total_s for r in result.rows]
    theirs = [r.baseline.total_s for r in result.rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.bar(x - 0.2, theirs, 0.4, label="per-query baseline (re-reads each window)", color="#d8573b")
    ax.bar(x + 0.2, ours, 0.4, label="cartmem (read once, answer from memory)", color="#3b7dd8")
    for i, row in enumerate(result.rows):
        note = f"{row.ratio:.0f}x" + (" (scaled)" if row.baseline_scaled else "")
        ax.annotate(note, (i, max(ours[i], theirs[i])), ha="center", va="bottom")
    ax.set_xticks(x, [f"Q = {r.questions}" for r in result.rows])
    ax.set_yscale("log")
    ax.set_ylim(min(ours + theirs) / 2, max(ours + theirs) * 5)
    ax.set_ylabel("seconds, decoding included (log scale)")
    ax.set_title(
        f"{result.session_minutes:g}-min session, {result.preset} preset on {result.device}"
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
