"""The capacity model's arithmetic: no measuring, no torch (``app.bench.capacity`` measures).

Two parts. The CPU model predicts the ingest benchmark's wall time at N sessions from unit
costs measured in small calibration runs of the same engine; the H200 plan turns a preset's
exact byte counts and a few measured or assumed rates into sessions, frames/s and MB/s.

The CPU model counts time on the engine's main thread, which is the critical path: it
applies records, runs the backbone and the sampler and commits, one after the other, while
the decode pool runs beside it on the same cores. Every unit cost is main-thread wall time
measured in calibration runs where the decode threads and torch's threads share the cores
as they do at any N (per session the work is the same), so the sharing is inside the unit
costs. What changes with N is counted here exactly: how records fall into loops and commit
rounds, how many sessions each sampler call batches, and the bytes and snapshots of every
commit round from the save cadence (``simulate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

GIB = 2**30


# ====================================================================== the save cadence
@dataclass(frozen=True)
class SessionShape:
    """One benchmark session as messages: a start, ``chunks`` chunks, an end."""

    chunks: int
    memory_frames: int  # frames the 1 FPS timeline emits over the session
    decoded_frames: int  # frames decoding keeps over the session
    clip_frames: int  # T
    save_clips: int  # CARTMEM_MEMORY_SAVE_CLIPS

    @property
    def records(self) -> int:
        return self.chunks + 2

    def frames_after_chunk(self, chunk: int) -> int:
        """Memory frames emitted once ``chunk`` (0-based) is applied, spread evenly."""
        return (chunk + 1) * self.memory_frames // self.chunks


@dataclass(frozen=True)
class Bytes:
    """What a commit writes of one session, by kind (bytes)."""

    memory: int  # the memory arrays, exact from the preset (``Memory.nbytes_per_session``)
    frame: int  # one stored frame (H x W x 3), also the held frame of the timeline
    thumbnail: float  # evidence thumbnail bytes per memory frame (measured mean)


@dataclass
class Round:
    """One commit round of the simulation."""

    records: int = 0
    snapshots: int = 0  # dirty sessions written
    memory_saves: int = 0
    frames_stored: int = 0
    held_stored: int = 0
    bytes: float = 0.0


@dataclass
class Schedule:
    """How N interleaved sessions go through the engine: sampler calls and commit rounds."""

    sessions: int
    records: int
    write_calls: list[tuple[int, int]] = field(default_factory=list)  # (sessions, frames)
    rounds: list[Round] = field(default_factory=list)

    @property
    def commit_bytes(self) -> float:
        return sum(r.bytes for r in self.rounds)

    @property
    def snapshots(self) -> int:
        return sum(r.snapshots for r in self.rounds)


@dataclass
class _Session:
    frames: int = 0  # emitted so far (the session's step)
    clipped: int = 0  # frames taken into clips
    unsaved_clips: int = 0
    stored_upto: int = 0  # frames stored in the database (or held by the stored memory)
    dirty: bool = False
    closed: bool = False


class CommitPolicy(Protocol):
    """When the simulated engine commits: asked at the end of every loop."""

    def due(self, records: int, calls: list[tuple[int, int]]) -> bool:
        """After a loop that applied ``records`` records and made these sampler calls."""
        ...

    def committed(self, done: Round) -> None: ...


@dataclass
class EveryRecords:
    """A commit at the end of the loop that passes each multiple of ``records`` records."""

    records: float
    _applied: int = 0
    _next: float = 0.0

    def due(self, records: int, calls: list[tuple[int, int]]) -> bool:
        self._applied += records
        self._next = self._next or self.records
        if self._applied < self._next:
            return False
        while self._next <= self._applied:
            self._next += self.records
        return True

    def committed(self, done: Round) -> None:
        pass


@dataclass
class EverySeconds:
    """The engine's rule: at the end of a loop, a commit if ``interval_s`` have passed since
    the last one ended; time runs by the unit costs (a loop that writes many clips is long,
    so a round can hold several intervals' records)."""

    units: UnitCosts
    interval_s: float
    clock_s: float = 0.0
    _last_s: float = 0.0

    def due(self, records: int, calls: list[tuple[int, int]]) -> bool:
        u = self.units
        self.clock_s += records * (u.apply_s_per_record + u.other_s_per_record)
        self.clock_s += sum(write_seconds(u, b, f) for b, f in calls)
        return self.clock_s - self._last_s >= self.interval_s

    def committed(self, done: Round) -> None:
        self.clock_s += commit_seconds(self.units, done)
        self._last_s = self.clock_s


def simulate(
    shape: SessionShape,
    sessions: int,
    sizes: Bytes,
    *,
    loop_records: int,
    policy: CommitPolicy,
    max_sessions_per_write: int = 64,
) -> Schedule:
    """The engine's bookkeeping for ``sessions`` copies of ``shape`` interleaved message by
    message (the file source's order), exactly as the engine does it, given that each loop
    applies ``loop_records`` records and ``policy`` says when a loop ends in a commit; the
    last records are followed by a commit in any case.

    Per loop: the records are applied, every session with a full clip is written, in
    sampler calls of at most ``max_sessions_per_write`` sessions (the engine's
    ``IngestEngine.max_sessions_per_write``), then each ended session's last partial clip
    alone. Per commit, each dirty
    session stores: its memory when ``save_clips`` clips are unsaved or it ended; the frames
    added since its last commit that the stored memory does not hold, each once; the
    timeline's held frame (its ended sessions' too); its new thumbnails.
    """
    n, t = sessions, shape.clip_frames
    total = shape.records * n
    states = [_Session() for _ in range(n)]
    schedule = Schedule(sessions=n, records=total)
    current = Round()
    thumbs_pending = 0
    applied = 0
    while applied < total:
        calls: list[tuple[int, int]] = []
        for index in range(applied, min(total, applied + loop_records)):
            s, message = states[index % n], index // n
            s.dirty = True
            if 1 <= message <= shape.chunks:
                before = s.frames
                s.frames = shape.frames_after_chunk(message - 1)
                thumbs_pending += s.frames - before
            elif message == shape.records - 1:
                s.closed = True
            current.records += 1
        loop = min(total, applied + loop_records) - applied
        applied += loop
        ready = [s for s in states if s.frames - s.clipped >= t]
        while ready:
            for i in range(0, len(ready), max_sessions_per_write):
                group = len(ready[i : i + max_sessions_per_write])
                calls.append((group, group * t))
            for s in ready:
                s.clipped += t
                s.unsaved_clips += 1
            ready = [s for s in states if s.frames - s.clipped >= t]
        for s in states:
            if s.closed and s.frames > s.clipped:
                calls.append((1, s.frames - s.clipped))
                s.clipped = s.frames
                s.unsaved_clips += 1
        schedule.write_calls += calls
        if policy.due(loop, calls) or applied >= total:
            thumbs_pending = _commit(states, current, sizes, shape, thumbs_pending)
            schedule.rounds.append(current)
            policy.committed(current)
            current = Round()
    return schedule


def _commit(
    states: list[_Session], current: Round, sizes: Bytes, shape: SessionShape, thumbs: int
) -> int:
    for s in states:
        if not s.dirty:
            continue
        saving = s.unsaved_clips > 0 and (s.unsaved_clips >= shape.save_clips or s.closed)
        # frames the stored memory lacks: the unsaved clips' and the pending ones, unless
        # the memory is stored now (then the pending ones only)
        first_needed = s.clipped if saving else _first_unsaved_frame(s, shape)
        new_from = max(s.stored_upto, first_needed)
        stored = max(0, s.frames - new_from)
        current.snapshots += 1
        current.frames_stored += stored
        current.memory_saves += saving
        held = s.frames > 0  # the timeline's last frame, stored with every commit
        current.held_stored += held
        current.bytes += (saving * sizes.memory) + (stored + held) * sizes.frame
        s.stored_upto = max(s.stored_upto, s.frames)
        if saving:
            s.unsaved_clips = 0
        s.dirty = False
    current.bytes += thumbs * sizes.thumbnail
    return 0


def _first_unsaved_frame(s: _Session, shape: SessionShape) -> int:
    """The first frame the stored memory lacks: the start of the oldest unsaved clip. Clips
    are full (``clip_frames``) except a session's last, which is never left unsaved."""
    return s.clipped - s.unsaved_clips * shape.clip_frames


# ====================================================================== the CPU model
@dataclass(frozen=True)
class UnitCosts:
    """Main-thread wall seconds per unit, fitted on the calibration runs."""

    apply_s_per_record: float  # check, session state, timeline, thumbnails (decode is beside)
    write_s_per_call: float  # a sampler call's fixed part
    write_s_per_session: float  # per session in a call (copies in and out of the pool, ...)
    write_s_per_frame: float  # backbone and sampler per clip frame
    commit_s_per_round: float
    commit_s_per_snapshot: float
    commit_s_per_byte: float
    other_s_per_run: float  # start and end of a run (the first decode, the idle check)
    other_s_per_record: float  # the loop's own time: polls, flow-control waits
    decode_cpu_s_per_record: float  # CPU seconds of the decode pool (beside the main thread)
    main_cpu_share: float  # CPU seconds the whole process used per main-thread second


@dataclass(frozen=True)
class Prediction:
    sessions: int
    seconds: float
    decoded_frames_per_second: float
    phases_s: dict[str, float]  # apply, write, commit, other
    commit_rounds: int
    commit_bytes: float
    commit_bytes_per_round: float
    write_calls: int
    mean_batch: float
    decode_bound_s: float  # the wall time if the cores were the limit instead


def predict(
    units: UnitCosts,
    shape: SessionShape,
    sizes: Bytes,
    sessions: int,
    *,
    loop_records: int,
    commit_interval_s: float,
    cores: int,
) -> Prediction:
    """Wall time of the ingest benchmark at ``sessions`` sessions: the simulated loops and
    commits, each timed by the unit costs."""
    schedule = simulate(
        shape,
        sessions,
        sizes,
        loop_records=loop_records,
        policy=EverySeconds(units, commit_interval_s),
    )
    phases = _phases(units, schedule)
    seconds = sum(phases.values())
    cpu = seconds * units.main_cpu_share + schedule.records * units.decode_cpu_s_per_record
    decoded = sessions * shape.decoded_frames
    calls = schedule.write_calls
    return Prediction(
        sessions=sessions,
        seconds=seconds,
        decoded_frames_per_second=decoded / seconds,
        phases_s={k: round(v, 3) for k, v in phases.items()},
        commit_rounds=len(schedule.rounds),
        commit_bytes=schedule.commit_bytes,
        commit_bytes_per_round=schedule.commit_bytes / len(schedule.rounds),
        write_calls=len(calls),
        mean_batch=sum(b for b, _ in calls) / max(1, len(calls)),
        decode_bound_s=cpu / cores,
    )


def write_seconds(units: UnitCosts, sessions: int, frames: int) -> float:
    """One sampler call (backbone and sampler) of ``sessions`` clips, ``frames`` in all."""
    return (
        units.write_s_per_call
        + sessions * units.write_s_per_session
        + frames * units.write_s_per_frame
    )


def commit_seconds(units: UnitCosts, done: Round) -> float:
    return (
        units.commit_s_per_round
        + done.snapshots * units.commit_s_per_snapshot
        + done.bytes * units.commit_s_per_byte
    )


def _phases(units: UnitCosts, schedule: Schedule) -> dict[str, float]:
    return {
        "apply": schedule.records * units.apply_s_per_record,
        "write": sum(write_seconds(units, b, f) for b, f in schedule.write_calls),
        "commit": sum(commit_seconds(units, r) for r in schedule.rounds),
        "other": units.other_s_per_run + schedule.records * units.other_s_per_record,
    }


def least_squares(rows: list[list[float]], targets: list[float]) -> list[float]:
    """Non-negative least squares by active set on the normal equations (a few columns):
    a unit cost is never negative."""
    columns = len(rows[0])
    active = list(range(columns))
    while True:
        coef = _solve([[r[j] for j in active] for r in rows], targets)
        if all(c >= 0 for c in coef) or not active:
            out = [0.0] * columns
            for j, c in zip(active, coef, strict=True):
                out[j] = max(0.0, c)
            return out
        active.pop(min(range(len(coef)), key=lambda i: coef[i]))


def _solve(rows: list[list[float]], targets: list[float]) -> list[float]:
    k = len(rows[0]) if rows else 0
    if k == 0:
        return []
    a = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    b = [sum(r[i] * y for r, y in zip(rows, targets, strict=True)) for i in range(k)]
    for i in range(k):  # Gauss-Jordan with partial pivoting; a tiny ridge keeps it regular
        a[i][i] += 1e-12 * (a[i][i] or 1.0)
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(a[r][col]))
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        if a[col][col] == 0:
            continue
        for r in range(k):
            if r != col:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
                b[r] -= f * b[col]
    return [b[i] / a[i][i] if a[i][i] else 0.0 for i in range(k)]


# ====================================================================== the H200 plan
@dataclass(frozen=True)
class DevicePlanInputs:
    """What the plan starts from; ``*_estimate`` fields are assumptions, not measurements."""

    device_memory_bytes: int  # usable device memory
    reserved_bytes_estimate: int  # weights, CUDA context, backbone and sampler workspace
    memory_bytes_fp32: int  # one session's memory, exact (the pool holds float32 today)
    memory_bytes_fp16: int
    backbone_frames_per_s: float  # measured on the GPU, or an estimate (labelled by source)
    sampler_clips_per_s: float  # sampler writes of one session's clip per second
    decode_cpu_s_per_source_frame: float  # measured on this machine's CPU
    host_cores: int
    camera_fps: float  # source frames per second of a camera
    memory_fps: float
    clip_frames: int
    save_clips: int  # CARTMEM_MEMORY_SAVE_CLIPS
    commit_interval_s: float
    stored_frame_bytes: int  # a pending frame as stored (decoded size, H x W x 3)
    thumbnail_bytes_per_memory_frame: float
    chunk_seconds: float
    apply_s_per_record: float  # main-thread seconds per record (measured on the tiny preset)
    database_write_bytes_per_s_estimate: float  # what PostgreSQL sustains (assumption)


def sessions_held(device_memory: int, reserved: int, per_session: int) -> int:
    """Memories that fit in the device pool."""
    return max(0, (device_memory - reserved) // per_session)


def checkpoint_bytes_per_session_s(p: DevicePlanInputs, memory_bytes: int) -> dict[str, float]:
    """Bytes per second one live session adds to the checkpoints, by kind.

    Its memory is stored every ``save_clips`` clips (``save_clips * clip_frames`` memory
    frames); each memory frame is stored once raw while its clip is unsaved; the timeline's
    held frame goes with every commit the session is dirty in; and its thumbnails.
    """
    frames_per_save = p.save_clips * p.clip_frames
    return {
        "memory": memory_bytes * p.memory_fps / frames_per_save,
        "frames": p.stored_frame_bytes * p.memory_fps,
        "held_frame": p.stored_frame_bytes / p.commit_interval_s,
        "thumbnails": p.thumbnail_bytes_per_memory_frame * p.memory_fps,
    }


def replay_after_crash(p: DevicePlanInputs, sessions: int) -> dict[str, float]:
    """Worst case: every session replays ``save_clips`` clips (the bound the cadence keeps)
    after its last stored memory, read back from the database and written again."""
    frames = sessions * p.save_clips * p.clip_frames
    return {
        "frames": frames,
        "stored_bytes": frames * p.stored_frame_bytes,
        "backbone_s": frames / p.backbone_frames_per_s,
        "sampler_s": sessions * p.save_clips / p.sampler_clips_per_s,
    }


def plan(p: DevicePlanInputs, *, workers: int = 1) -> dict[str, object]:
    """Sessions one GPU worker sustains, each bound, and the first to saturate."""
    per_session_fp32 = checkpoint_bytes_per_session_s(p, p.memory_bytes_fp32)
    per_session_bytes = sum(per_session_fp32.values())
    records_per_session_s = 1.0 / p.chunk_seconds
    bounds = {
        "device_memory_fp32": sessions_held(
            p.device_memory_bytes, p.reserved_bytes_estimate, p.memory_bytes_fp32
        ),
        "backbone": math.floor(p.backbone_frames_per_s / p.memory_fps),
        "sampler": math.floor(p.sampler_clips_per_s * p.clip_frames / p.memory_fps),
        "decode_cpu": math.floor(p.host_cores / (p.decode_cpu_s_per_source_frame * p.camera_fps)),
        "main_thread_records": math.floor(1.0 / (p.apply_s_per_record * records_per_session_s)),
        "database_writes": math.floor(p.database_write_bytes_per_s_estimate / per_session_bytes),
    }
    first = min(bounds, key=lambda k: bounds[k])
    sessions = bounds[first]
    return {
        "workers": workers,
        "bounds_sessions_per_worker": bounds,
        "saturates_first": first,
        "sessions_per_worker": sessions,
        "sessions_total": sessions * workers,
        "device_memory_fp16_sessions": sessions_held(
            p.device_memory_bytes, p.reserved_bytes_estimate, p.memory_bytes_fp16
        ),
        "checkpoint_bytes_per_session_s": {k: round(v) for k, v in per_session_fp32.items()},
        "checkpoint_mb_per_s_per_worker": round(sessions * per_session_bytes / 1e6, 1),
        "replay_after_crash": {k: round(v, 1) for k, v in replay_after_crash(p, sessions).items()},
    }


def divide(p: DevicePlanInputs, workers: int) -> dict[str, object]:
    """``workers`` ingest workers, one GPU each (each with its host's cores), sharing one
    database and one topic: the per-worker bounds scale with workers, the database's does
    not. Kafka partitions: at least one per worker, and a few more so that a rebalance
    after a lost worker spreads its sessions over the others."""
    one = plan(p)
    bounds = dict(one["bounds_sessions_per_worker"])  # type: ignore[call-overload]  # a dict
    database = bounds.pop("database_writes")
    per_worker = min(bounds.values())
    total = min(per_worker * workers, database)
    first = "database_writes" if database < per_worker * workers else min(bounds, key=bounds.get)
    return {
        "workers": workers,
        "sessions_total": total,
        "sessions_per_worker": total // workers,
        "saturates_first": first,
        "kafka_partitions_at_least": 4 * workers,
        "max_live_sessions_per_worker": one["bounds_sessions_per_worker"]["device_memory_fp32"],  # type: ignore[index]  # a dict
    }
