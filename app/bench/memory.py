"""Memory size against session length: bytes per session from 1 minute to 10 hours.

One session is streamed through ``LongVMNet.write_tokens`` clip by clip, as ingest writes
it, and measured when it reaches each length: the bytes the database stores for it (the
memory arrays of the ingest commit snapshot) and the bytes its tensors take on the
device, with the sampler's time per clip. Both must stay flat: a memory is m tokens
however long the session was.

Ten hours at 1 FPS is 36,000 frames. The backbone's cost is not what is measured and a
10-hour video would take longer to draw than to read, so the stream is made of a short
real clip's backbone tokens, repeated with fresh noise on every pass (the sampler then
sees a different clip each time); the writes are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.bench.machine import describe_machine
from app.bench.stopwatch import Stopwatch
from app.bench.synthetic import FULL_SESSION, QUICK_SESSION, SessionSpec, cached_session
from app.bench.video_window import decode_window
from app.ingest.session import LiveSession
from app.model_runtime import LoadedModel, one_network
from model import Memory

NOISE = 0.1  # of the clip tokens' standard deviation


@dataclass(frozen=True)
class MemoryPlan:
    session: SessionSpec  # whose first minute gives the real tokens
    minutes: tuple[float, ...]  # lengths at which the session is measured


FULL = MemoryPlan(FULL_SESSION, minutes=(1, 10, 60, 600))
QUICK = MemoryPlan(QUICK_SESSION, minutes=(1, 2, 5))


@dataclass(frozen=True)
class MemoryRow:
    minutes: float
    frames: int  # written so far: whole clips, the first clip boundary at or past the length
    valid_tokens: int
    database_bytes: int  # memory arrays in the checkpoint snapshot
    device_bytes: int  # the session's memory tensors
    sampler_ms_per_clip: float  # mean since the previous row


@dataclass(frozen=True)
class MemoryResult:
    machine: dict[str, Any]
    preset: str
    device: str
    memory_size: int
    channels: int
    memory_fps: float
    flat: bool  # every row stores the same number of bytes
    rows: list[MemoryRow]
    benchmark: str = "memory"


def run(
    model: LoadedModel,
    *,
    quick: bool,
    cache: Path,
    memory_fps: float = 0.0,
    log: Callable[[str], None] = lambda _line: None,
) -> MemoryResult:
    plan = QUICK if quick else FULL
    machine = describe_machine()
    model, net = one_network(model)  # a pair: its lead
    fps = memory_fps or net.cfg.fps
    t = net.cfg.clip_frames
    session = cached_session(cache, plan.session, log)
    frames = decode_window(session.video, 0, t * max(1, round(60 * fps / t)), fps)
    base = torch.cat([net.encode_frames(frames[None, i : i + t]) for i in range(0, len(frames), t)])
    noise = torch.Generator(device=base.device).manual_seed(0)
    scale = NOISE * float(base.std())
    rows: list[MemoryRow] = []
    memory: Memory | None = None
    written = 0
    for minutes in sorted(plan.minutes):
        watch, clips = Stopwatch(model.device), 0
        target = round(minutes * 60 * fps)
        while written < target:
            tokens = base[(written // t) % len(base)][None]  # whole clips, as ingest writes
            tokens = tokens + scale * torch.randn(
                tokens.shape, generator=noise, device=base.device
            )  # (1, T, S, C)
            with watch.phase("sampler"):
                memory = net.write_tokens(memory, tokens)
            written += tokens.shape[1]
            clips += 1
        assert memory is not None
        per_clip = watch.seconds["sampler"] / max(clips, 1)
        rows.append(_measure(memory, minutes, written, model.version, fps, per_clip))
        log(f"memory: {minutes:g} min written, {rows[-1].database_bytes:,} bytes stored")
    return MemoryResult(
        machine=machine,
        preset=net.cfg.name,
        device=model.device,
        memory_size=net.cfg.memory_size,
        channels=net.cfg.backbone_channels,
        memory_fps=fps,
        flat=len({r.database_bytes for r in rows}) == 1,
        rows=rows,
    )


def _measure(
    memory: Memory, minutes: float, frames: int, version: str, fps: float, sampler_s: float
) -> MemoryRow:
    snapshot = LiveSession("bench", fps, frames_seen=frames, written=True).snapshot(
        memory.to_arrays(), version
    )
    tensors = (memory.tokens, memory.time_index, memory.spatial_index, memory.valid)
    return MemoryRow(
        minutes=minutes,
        frames=frames,
        valid_tokens=int(memory.valid.sum()),
        database_bytes=sum(len(blob.data) for blob in snapshot.memory),
        device_bytes=sum(x.numel() * x.element_size() for x in (*tensors, memory.frames_seen)),
        sampler_ms_per_clip=round(sampler_s * 1000, 2),
    )


def plot(result: MemoryResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.minutes for r in result.rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(x, [r.database_bytes / 1e6 for r in result.rows], "o-", label="stored in the database")
    ax.plot(x, [r.device_bytes / 1e6 for r in result.rows], "s--", label="on the device")
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{m:g}" for m in x])
    ax.minorticks_off()
    ax.set_ylim(0, max(r.database_bytes for r in result.rows) / 1e6 * 1.5)
    ax.set_xlabel("session length, minutes (log scale)")
    ax.set_ylabel("MB per session")
    ax.set_title(
        f"Memory per session, {result.preset} preset (m = {result.memory_size} tokens "
        f"x {result.channels})"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
