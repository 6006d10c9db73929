"""The ingest engine: records in, session memories out, with exact recovery.

Per poll: records join the read-ahead, which decodes them on a thread pool within a byte
budget; their results are applied in offset order (contract checks, seq dedupe, the
session timeline, the clip buffer); then every session with a full
clip is written by the sampler in one batch. A commit stores, in one database
transaction, every changed session (memory, pending clip, timeline), the dead letters and
the next offset of every owned partition. After a crash or a rebalance the owner seeks to
the stored offsets and replays; since processing is deterministic and a session's result
does not depend on which sessions shared its batch, the replayed state is the state an
uninterrupted run would have reached.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from sqlalchemy.exc import IntegrityError

from app.contract import MAX_CAMERAS, Envelope, MessageType
from app.db import Database
from app.errors import BrokerUnavailableError, CartmemError, DatabaseUnavailableError
from app.ingest.cameras import CameraSet, CameraTrack
from app.ingest.dead_letters import dead_letter_record
from app.ingest.metrics import IngestMetrics
from app.ingest.pool import DevicePool, PoolFullError
from app.ingest.prepare import FrameNeeds, Prepared, prepare
from app.ingest.read_ahead import ReadAhead
from app.ingest.records import Record, TopicPartition
from app.ingest.session import LiveSession, memory_arrays
from app.ingest.sources import Source
from app.ingest.thumbnails import ThumbnailPolicy
from app.model_runtime import LoadedModel, backbone_run
from app.settings import Settings
from model import Memory
from storage import SessionStatus
from storage.errors import FencedError
from storage.ingest_state import (
    DeadLetterRecord,
    SessionSnapshot,
    claim_partitions,
    commit_ingest_state,
    load_session,
    quiet_open_sessions,
    record_partition_loss,
)

log = logging.getLogger("cartmem.ingest")

#: a chunk starting this much (seconds) after the video so far is a gap worth a record;
#: smaller ones are a camera's timestamp jitter
TIME_GAP_NOTED_S = 1.0


@dataclass
class IngestStats:
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    clips: int = 0
    commits: int = 0
    sessions_closed: int = 0
    decoded_frames: int = 0
    memory_frames: int = 0
    sessions_expired: int = 0  # closed because no message came for the idle timeout
    clips_lost: int = 0  # clips the model could not write (recorded on their session)
    fenced_partitions: int = 0  # partitions dropped because another worker had claimed them
    commit_bytes: int = 0  # array and thumbnail bytes the commits wrote
    replayed_clips: int = 0  # clips written again after a restart (the stored memory lacked them)
    commit_seconds: float = 0.0  # time spent in commit transactions


class IngestEngine:
    """Consumes ``source`` into session memories; ``run`` until stopped, idle or a count."""

    #: Sessions one sampler step writes at most. Their backbone tokens and the sampler's
    #: candidates are held at once: 64 x (T x S + m) x C x 4 B = 2.3 GB at the paper preset,
    #: where a backlog or a takeover can make a thousand sessions ready together. Writes are
    #: batch-invariant, so the grouping changes no memory.
    max_sessions_per_write = 64

    def __init__(
        self,
        settings: Settings,
        database: Database,
        model: LoadedModel,
        source: Source,
        *,
        on_session_closed: Callable[[str], None] | None = None,
        metrics: IngestMetrics | None = None,
        decode_workers: int | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.net = model.net
        self.model_version = model.version
        self.cfg = self.net.cfg
        self.fps = settings.memory_fps or self.cfg.fps
        self.frame_needs = FrameNeeds.of(self.cfg.image_size, self.fps)
        self.evidence = ThumbnailPolicy.of(settings, self.fps)
        self.source = source
        self.on_session_closed = on_session_closed or (lambda _sid: None)
        self.metrics = metrics or IngestMetrics()
        self.pool = DevicePool(
            self.cfg,
            settings.max_live_sessions,
            model.device,
            # on the CPU a write then projects only its clip's tokens (a sixth of a write);
            # a GPU projects in no time and holds more sessions without them
            features=self.net.write_features if torch.device(model.device).type == "cpu" else 0,
        )
        self.backbone_run = backbone_run(settings, model)
        self.sessions: dict[str, LiveSession] = {}
        self.positions: dict[TopicPartition, int | None] = {}  # next offset to apply, owned only
        self.dead: list[DeadLetterRecord] = []
        self.closed: list[str] = []  # closed since the last commit
        self.stats = IngestStats()
        self._decode_args = (settings, self.frame_needs)
        threads = decode_workers or os.cpu_count() or 2
        self._executor = self._decode_pool(threads)
        self._batch = settings.ingest_batch_records
        self._read_ahead = ReadAhead(
            self._executor,
            lambda record: prepare(record, *self._decode_args),
            limit_bytes=settings.ingest_read_ahead_mb * 2**20,
            max_records=4 * self._batch,
            threads=threads,
        )
        self._paused = False
        self._stop = False
        self._last_commit = time.monotonic()
        self._commit_failures = 0
        self._last_expiry_sweep = time.monotonic()
        self._unreachable_since: float | None = None
        self.epochs: dict[TopicPartition, int] = {}  # owner epoch of each partition we hold
        # partitions assigned since the loop last looked, with their stored offset
        self._retention_checks: dict[TopicPartition, int] = {}

    def _decode_pool(self, threads: int) -> ThreadPoolExecutor:
        """The threads that check and decode records (a benchmark's subclass times them)."""
        return ThreadPoolExecutor(max_workers=threads)

    # ================================================================== running
    def request_stop(self) -> None:
        """Finish the records in hand, commit and return from ``run`` (SIGTERM calls this)."""
        self._stop = True

    def work_waiting(self) -> bool:
        """Records in hand, or left on the broker at the latest commit (readiness asks this
        from another thread: it only reads)."""
        return bool(self._read_ahead) or self.metrics.last_lag > 0

    def run(
        self, *, max_messages: int | None = None, until_idle_s: float | None = None
    ) -> IngestStats:
        self.source.bind(self._on_assigned, self._on_revoked)
        last_activity = time.monotonic()
        try:
            while not self._stop:
                budget = self._batch
                if max_messages is not None:
                    budget = min(budget, max_messages - self.stats.applied - len(self._read_ahead))
                records = self.source.poll(0.2, budget) if budget > 0 else []
                self._check_retention()
                applied_before = self.stats.applied
                for record in records:
                    if record.tp in self.positions:
                        self._read_ahead.add(record)
                self._read_ahead.decode_within_budget()
                self._apply_done(wait=not records)
                self._read_ahead.decode_within_budget()
                self._flow_control()
                self._write_ready_clips()
                self._expire_quiet_sessions()
                worked = bool(records or self._read_ahead) or self.stats.applied != applied_before
                self._maybe_commit()
                if worked or self._paused:
                    last_activity = time.monotonic()  # idle counts from the end of all work
                if max_messages is not None and self.stats.applied >= max_messages:
                    break
                idle_s = time.monotonic() - last_activity
                if until_idle_s is not None and not self._read_ahead and idle_s >= until_idle_s:
                    if self._caught_up(until_idle_s):
                        break
                    last_activity = time.monotonic()  # records are waiting: not idle
        finally:
            self._drain()
            self.commit()
            self.source.close()
            self._executor.shutdown(wait=True)
        return self.stats

    def _caught_up(self, patience_s: float) -> bool:
        """Idle means caught up, not cut off: ask the source whether anything is left.

        A broker that cannot be reached is given ``patience_s`` more seconds (the worker
        keeps polling meanwhile); after that :class:`BrokerUnavailableError` ends the run,
        with what was done committed, instead of a quiet exit with records left behind.
        """
        try:
            caught_up = self.source.caught_up()
        except BrokerUnavailableError as exc:
            now = time.monotonic()
            if self._unreachable_since is None:
                self._unreachable_since = now
            if now - self._unreachable_since >= patience_s:
                raise BrokerUnavailableError(
                    f"the Kafka broker has been unreachable for {now - self._unreachable_since:.0f}"
                    " s while this worker waited to catch up; records may remain unread."
                ) from exc
            log.warning("not idle: %s", exc)
            return False
        self._unreachable_since = None
        return caught_up

    def _flow_control(self) -> None:
        """Bounded buffers: stop fetching while unapplied records pile up (their decoding is
        bounded in bytes by the read-ahead itself)."""
        if not self._paused and self._read_ahead.full():
            self.source.pause()
            self._paused = True
        elif self._paused and self._read_ahead.drained():
            self.source.resume()
            self._paused = False

    def _apply_done(self, *, wait: bool) -> None:
        """Apply prepared records in order while their decoding has finished.

        A database outage while loading a session leaves the record at the head of the
        queue: nothing moves on until the database is back, and nothing is lost.
        """
        while self._read_ahead:
            _record, future = self._read_ahead.head()
            if not future.done() and not wait:
                return
            try:
                self._apply(future.result())
            except DatabaseUnavailableError as exc:
                log.error("cannot load session state, retrying: %s", exc)
                time.sleep(1.0)
                return
            self._read_ahead.pop()
            wait = False

    def _drain(self) -> None:
        while self._read_ahead:
            _record, future = self._read_ahead.head()
            self._apply(future.result())
            self._read_ahead.pop()
            self._read_ahead.decode_within_budget()
        self._write_ready_clips()

    # ================================================================== partitions
    def _on_assigned(self, partitions: set[TopicPartition]) -> None:
        """Claim the partitions (a new owner epoch fences whoever held them) and seek each
        to its stored offset."""
        claimed = self._claim(partitions)
        stored = {tp: offset for tp, (offset, _epoch) in claimed.items()}
        for tp in sorted(partitions):
            offset, self.epochs[tp] = claimed[tp]
            if offset is not None:
                self.source.seek(tp, offset)
                # checked from the worker's loop: the broker client may not block in here
                self._retention_checks[tp] = offset
            elif hasattr(self.source, "seek_to_beginning"):
                self.source.seek_to_beginning(tp)
            self.positions[tp] = offset
        log.info("assigned %s (stored offsets %s)", sorted(partitions), stored)

    def _check_retention(self) -> None:
        """For each partition assigned since the last look: did Kafka's retention delete
        messages from its stored offset on before this worker read them? Those are lost:
        said in one sentence and recorded on the partition's open sessions; the consumer
        reads on from the oldest offset left (its reset policy, ``earliest``)."""
        first_offset = getattr(self.source, "first_offset", None)
        checks, self._retention_checks = self._retention_checks, {}
        for tp, offset in sorted(checks.items()):
            if first_offset is not None and tp in self.positions:
                self._lost_to_retention(tp, offset, first_offset(tp))

    def _lost_to_retention(self, tp: TopicPartition, offset: int, first: int) -> None:
        if first <= offset:
            return
        topic, partition = tp
        reason = (
            f"Kafka's retention deleted offsets {offset} to {first - 1} of {topic}/{partition} "
            "before ingest read them: the video and messages there are lost."
        )
        loss = {"reason": reason, "topic": topic, "partition": partition}
        loss |= {"from_offset": offset, "to_offset": first}
        with self.database.session() as db:
            affected = record_partition_loss(db, topic=topic, partition=partition, loss=loss)
        log.error(
            "%s Reading on from offset %d; open sessions marked: %s",
            reason,
            first,
            ", ".join(affected) or "none",
            extra={"topic": topic, "partition": partition, "offset": offset},
        )
        if self.positions.get(tp) == offset:  # nothing read yet: the next commit moves on
            self.positions[tp] = first

    def _on_revoked(self, partitions: set[TopicPartition]) -> None:
        """Commit what we did with the partitions, then forget their sessions."""
        for record, decoding in self._read_ahead.remove(lambda record: record.tp in partitions):
            self._apply(decoding.result() if decoding else prepare(record, *self._decode_args))
        self._write_ready_clips()
        try:
            self.commit()
        except CartmemError as exc:  # the next owner replays from the last good commit
            log.error("commit at revoke failed: %s", exc)
        for sid in [s.id for s in self.sessions.values() if s.partition in partitions]:
            self._forget(sid)
        for tp in partitions:
            self.positions.pop(tp, None)
            self.epochs.pop(tp, None)
        log.info("revoked %s", sorted(partitions))

    def _claim(
        self, partitions: set[TopicPartition]
    ) -> dict[TopicPartition, tuple[int | None, int]]:
        def claim() -> dict[TopicPartition, tuple[int | None, int]]:
            with self.database.session() as db:
                return claim_partitions(db, self.source.group, partitions)

        try:
            return claim()
        except IntegrityError:  # another worker made a new partition's row first: it exists now
            return claim()

    def _drop_fenced(self, exc: FencedError) -> None:
        """Another worker owns these partitions now: forget their sessions, records, dead
        letters and positions without writing anything; the new owner replays them from
        its own commit."""
        fenced = set(exc.partitions)
        log.error("%s Dropping them; the new owner replays them from its commit.", exc)
        self._read_ahead.remove(lambda record: record.tp in fenced)
        for sid in [s.id for s in self.sessions.values() if s.partition in fenced]:
            self._forget(sid)
        self.closed = [sid for sid in self.closed if sid in self.sessions]
        self.dead = [d for d in self.dead if (d.topic, d.partition) not in fenced]
        for tp in fenced:
            self.positions.pop(tp, None)
            self.epochs.pop(tp, None)
        self.stats.fenced_partitions += len(fenced)
        self.metrics.commits.labels("fenced").inc()

    # ================================================================== one record
    def _apply(self, prepared: Prepared) -> None:
        record = prepared.record
        if record.tp not in self.positions:
            return  # the partition left us while the record was decoding
        self._apply_record(prepared)
        # only now: a commit taken while applying must not claim this record
        self.positions[record.tp] = record.offset + 1
        self.stats.applied += 1

    def _apply_record(self, prepared: Prepared) -> None:
        """Apply one checked record to its session, all or nothing.

        Whatever goes wrong with the message itself ends as a dead letter and leaves the
        session as it was; only a database outage (loading the session) propagates, so that
        the record is tried again rather than lost.
        """
        record = prepared.record
        env = prepared.envelope
        if env is None:
            self._dead_letter(record, prepared.error or "unreadable record", session_id=None)
            return
        session = self._session(env.session_id, record.tp)
        camera = session.cameras.get(env.camera)
        if camera is not None and env.seq <= camera.last_seq:  # seq counts per camera
            self.stats.duplicates += 1
            self.metrics.messages.labels("duplicate").inc()
            return
        if session.closed:
            self._dead_letter(
                record,
                f"session {env.session_id} already ended; seq {env.seq} arrived after its end.",
                env.session_id,
            )
            return
        problem = (
            prepared.error
            or self._camera_not_taken(session, camera, env)
            or self._outside_timeline(session, camera, env)
        )
        if problem is None:
            savepoint = session.savepoint()
            try:
                self._absorb(session, env, prepared)
            except Exception as exc:  # the message's fault: set it aside, keep the session
                session.rollback(savepoint)
                log.exception(
                    "applying %s failed", _where(record), extra=_context(record, session.id)
                )
                problem = f"the message could not be applied ({type(exc).__name__}: {exc})."
        if problem is not None:
            # the session goes on with what it has; its seq stays unused, so a stray
            # message cannot shadow the real ones and a corrected re-send still counts
            self._dead_letter(record, problem, env.session_id)
            return
        camera = session.cameras.get(env.camera)
        assert camera is not None  # absorbing the message added it
        if env.seq > camera.last_seq + 1:
            camera.gaps.append((camera.last_seq + 1, env.seq))
        camera.last_seq = env.seq
        session.last_message_at = time.time()
        session.dirty = True
        self.metrics.messages.labels("applied").inc()

    def _camera_not_taken(
        self, session: LiveSession, camera: CameraTrack | None, env: Envelope
    ) -> str | None:
        """Why a message of this camera cannot be taken, or None: its camera ended, or it
        would be one camera too many for the session."""
        if camera is not None and camera.ended:
            return (
                f"camera {env.camera} of session {env.session_id} already ended; seq {env.seq} "
                "arrived after its end."
            )
        known = {t.id for t in session.cameras.tracks}
        declared = env.control.get("cameras") or [] if env.type is MessageType.SESSION_START else []
        new = {env.camera, *declared} - known if camera is None else set(declared) - known
        if len(known) + len(new) > MAX_CAMERAS:
            named = ", ".join(sorted(str(c) for c in known)) or "none"
            return (
                f"session {env.session_id} would have {len(known) + len(new)} cameras (known: "
                f"{named}; new: {', '.join(sorted(new))}), more than the {MAX_CAMERAS} one "
                "session combines."
            )
        return None

    def _outside_timeline(
        self, session: LiveSession, camera: CameraTrack | None, env: Envelope
    ) -> str | None:
        """Why a chunk's t0 cannot be placed on its camera's timeline, or None.

        A chunk may start after a gap (a lost chunk, a camera that dropped out) but not
        arbitrarily far past the video seen so far (its camera's; a new camera's: the
        session's): that would fill the gap with one frozen frame and push the session's
        real video out of reach.
        """
        if env.type is not MessageType.CHUNK or env.t0 is None:
            return None
        seen = camera.video_end_us() if camera is not None else 0
        end_s = (seen or session.video_end_us()) / 1e6
        gap_s = env.t0 - end_s
        if gap_s > self.settings.max_time_gap_s:
            return (
                f"t0 {env.t0:g} s lies {gap_s:g} s past the end of the session's video so far "
                f"({end_s:g} s), more than the {self.settings.max_time_gap_s:g} s a gap may last "
                "(CARTMEM_MAX_TIME_GAP_S)."
            )
        return None

    def _absorb(self, session: LiveSession, env: Envelope, prepared: Prepared) -> None:
        """What a valid message does to its session (may raise: the caller rolls back)."""
        cameras = session.cameras
        if env.type is MessageType.SESSION_START and env.control.get("cameras"):
            cameras.declare(env.control["cameras"])  # before its own: the declared order
        camera = cameras.get(env.camera) or cameras.add(env.camera)
        if env.type is MessageType.SESSION_START:
            if camera is cameras.tracks[0]:  # the session's start is its first camera's
                session.start_info = dict(env.control)
                session.store_id = env.control.get("store_id") or session.store_id
            else:
                session.store_id = session.store_id or env.control.get("store_id")
        elif env.type is MessageType.CHUNK:
            decoded = prepared.decoded
            assert decoded is not None
            self._note_time_gap(session, camera, env)
            times = decoded.offsets_us + round((env.t0 or 0.0) * 1_000_000)
            late = cameras.push(camera, decoded.frames, times, decoded.frame_duration_us)
            if late is not None:
                session.record_loss(
                    f"video of camera {env.camera} from {late[0]:g} s to {late[1]:g} s came "
                    f"after the session had moved on past it (its other cameras were more "
                    f"than CARTMEM_CAMERA_SKEW_S = {session.camera_skew_s:g} s ahead): the "
                    "memory does not hold it.",
                    seq=env.seq,
                    camera=env.camera,
                    from_s=round(late[0], 3),
                    to_s=round(late[1], 3),
                )
            session.add_samples(cameras.combine())
            if decoded.loss is not None:
                session.record_loss(decoded.loss, seq=env.seq, t0=env.t0, **_camera(session, env))
            self.metrics.count_frames(len(decoded.frames))
            self.stats.decoded_frames += len(decoded.frames)
        else:  # session_end: the camera's last frames; the session ends with its last camera
            cameras.end(camera, dict(env.control))
            if cameras.all_ended:
                self._close(session, _end_info(cameras, dict(env.control)))
            else:
                session.add_samples(cameras.combine())

    def _note_time_gap(self, session: LiveSession, camera: CameraTrack, env: Envelope) -> None:
        """A chunk that starts well after its camera's video so far (a camera that dropped
        out and came back, a lost chunk): the memory holds the last frame through the gap,
        so the gap is recorded among the session's losses with where it lies."""
        end_s = camera.video_end_us() / 1e6
        held = camera.timeline.held
        first = session.cameras.tracks[0].id  # losses recorded before a second camera came
        if env.t0 is None or held is None or env.t0 - end_s < TIME_GAP_NOTED_S:
            return
        last = session.losses[-1] if session.losses else {}
        if last.get("seq") == camera.last_seq and last.get("camera", first) == env.camera:
            return  # the chunk before lost its end, and that loss is on record already
        session.record_loss(
            f"no video from {end_s:g} s to {env.t0:g} s (a camera that dropped out, or a lost "
            "chunk): the memory holds the last frame before the gap through it.",
            seq=env.seq,
            from_s=round(end_s, 3),
            to_s=env.t0,
            **_camera(session, env),
        )

    def _close(self, session: LiveSession, end_info: dict[str, object]) -> None:
        """End the session (its last camera's session_end, or expiry): every camera's
        last frames, every step up to the camera furthest ahead."""
        cameras = session.cameras
        for camera in cameras.tracks:
            if not camera.ended:
                cameras.end(camera, dict(end_info))
        session.end_info = dict(end_info)
        session.add_samples(cameras.combine(final=True))
        session.status = SessionStatus.CLOSED.value  # written out by _write_ready_clips

    def _session(self, session_id: str, tp: TopicPartition) -> LiveSession:
        session = self.sessions.get(session_id)
        if session is not None:
            session.partition = tp
            return session
        with self.database.session() as db:
            snap = load_session(db, session_id)
        if snap is None:
            session = LiveSession(
                session_id,
                self.fps,
                evidence=self.evidence,
                camera_skew_s=self.settings.camera_skew_s,
                cart_top=self.settings.cart_band_top,
            )
            memory = Memory.empty(self.cfg, 1)
        else:
            session = LiveSession.from_snapshot(
                snap,
                self.fps,
                self.evidence,
                self.settings.camera_skew_s,
                self.settings.cart_band_top,
            )
            arrays = memory_arrays(snap)
            memory = Memory.from_arrays(arrays) if arrays else Memory.empty(self.cfg, 1)
            if memory.size != self.cfg.memory_size:  # stored under another checkpoint
                log.warning(
                    "session %s: its stored memory has %d slots (model %s), this model keeps "
                    "%d; %s",
                    session_id,
                    memory.size,
                    snap.model_version or "unknown",
                    self.cfg.memory_size,
                    "empty slots added" if memory.size < self.cfg.memory_size else "sampled down",
                    extra={"session": session_id},
                )
                with torch.inference_mode():
                    memory = self.net.fit_memory(memory)
        session.partition = tp
        self._admit(session, memory)
        if session.replay is not None:  # the clips the stored memory lacks, written again
            lengths, frames = session.replay
            session.replay, session.unsaved_clips = None, []
            for n in lengths:
                clip, frames = np.stack(frames[:n]), frames[n:]
                self._write_or_isolate([session], [clip], replay=True)
        return session

    def _admit(self, session: LiveSession, memory: Memory) -> None:
        if self.pool.keeps_features:
            with torch.inference_mode():
                memory = self.net.with_write_features(memory)
        clean = [s.id for s in self.sessions.values() if not s.dirty]
        try:
            evicted = self.pool.admit(session.id, memory, clean)
        except PoolFullError:
            # write what is ready (ended sessions' last clips too), save everything, and then
            # any session may leave: its whole state is in the database
            self._write_ready_clips()
            self.commit()
            evicted = self.pool.admit(session.id, memory, list(self.sessions))
        for sid in evicted:
            self.sessions.pop(sid, None)
        self.sessions[session.id] = session
        self.metrics.live_sessions.set(len(self.sessions))

    def _forget(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        self.pool.release(session_id)
        self.metrics.live_sessions.set(len(self.sessions))

    def _dead_letter(self, record: Record, reason: str, session_id: str | None) -> None:
        self.dead.append(dead_letter_record(record, reason, session_id))
        self.stats.dead_letters += 1
        self.metrics.dead_letters.inc()
        self.metrics.messages.labels("dead_letter").inc()
        log.warning(
            "dead letter %s: %s", _where(record), reason, extra=_context(record, session_id)
        )

    # ================================================================== the model
    def _write_ready_clips(self) -> None:
        """Write every full clip; then the last, partial clip of sessions that ended."""
        t = self.cfg.clip_frames
        while True:
            ready = [s for s in self.sessions.values() if len(s.pending) >= t]
            if not ready:
                break
            for i in range(0, len(ready), self.max_sessions_per_write):
                group = ready[i : i + self.max_sessions_per_write]
                self._write_or_isolate(group, [s.take_clip(t) for s in group])
        for session in [s for s in self.sessions.values() if s.closed and s.pending]:
            self._write_or_isolate([session], [session.take_clip(len(session.pending))])
        for session in self.sessions.values():
            if session.closed and session.id not in self.closed:
                self.closed.append(session.id)

    def _write_or_isolate(
        self, sessions: list[LiveSession], clips: list[np.ndarray], *, replay: bool = False
    ) -> None:
        """Write a batch; if it fails, write its sessions one by one, so that one session's
        bad clip costs that clip alone, on record, and never stops the worker."""
        try:
            self._write(sessions, clips, replay=replay)
            return
        except Exception as exc:
            if len(sessions) == 1:
                session, clip = sessions[0], clips[0]
                log.exception(
                    "writing a clip of session %s failed", session.id, extra={"session": session.id}
                )
                session.record_loss(
                    f"a clip of {len(clip)} frames could not be written into the memory "
                    f"({type(exc).__name__}: {exc}).",
                    frames=len(clip),
                )
                session.save_memory_now = True  # a restart must not replay past the loss
                self.stats.clips_lost += 1
                return
        for session, clip in zip(sessions, clips, strict=True):
            self._write_or_isolate([session], [clip], replay=replay)

    def _write(
        self, sessions: list[LiveSession], clips: list[np.ndarray], *, replay: bool = False
    ) -> None:
        """One sampler step for a batch of sessions (clips of equal length)."""
        ids = [s.id for s in sessions]
        with torch.inference_mode():
            # fixed-shape backbone calls: a session's tokens do not depend on its batch
            tokens = torch.stack(self.net.encode_clips(clips, self.backbone_run))  # (B, T, S, C)
            memory = self.net.write_tokens(self.pool.get(ids), tokens)
        self.pool.put(ids, memory)
        for i, session in enumerate(sessions):
            session.frames_seen = int(memory.frames_seen[i])
            session.written = True
            session.unsaved_clips.append(len(clips[i]))
            session.keep_cart_cells(clips[i])
            session.dirty = True
        if replay:  # written before a restart: not new work
            self.stats.replayed_clips += len(sessions)
            return
        self.stats.clips += len(sessions)
        self.metrics.clips.inc(len(sessions))
        self.metrics.samples.inc(sum(len(c) for c in clips))
        self.stats.memory_frames += sum(len(c) for c in clips)

    # ================================================================== commits
    def _expire_quiet_sessions(self) -> None:
        """Close the open sessions of our partitions that got no message for the idle
        timeout (a cart that left without a session_end, a session opened by a stray
        message), with the reason in their ``end_info``.

        Live sessions are judged by the wall clock of their last message here, stored ones
        by the database's clock of their last change. Expiry depends on time, not only on
        the records: a message for a session that arrives after it expired is a dead letter.
        """
        timeout = self.settings.session_idle_timeout_s
        if time.monotonic() - self._last_expiry_sweep < min(timeout, 60.0):
            return
        self._last_expiry_sweep = time.monotonic()
        cutoff = time.time() - timeout
        for ghost in [s for s in self.sessions.values() if not s.cameras.tracks and not s.dirty]:
            self._forget(ghost.id)  # only dead letters named it: nothing to close or keep
        quiet = [s for s in self.sessions.values() if not s.closed and s.last_message_at < cutoff]
        try:
            with self.database.session() as db:
                stored = quiet_open_sessions(
                    db, list(self.positions), idle_s=timeout, exclude=list(self.sessions)
                )
            quiet += [self._session(sid, tp) for sid, tp in stored]
        except CartmemError as exc:  # the next sweep looks again
            log.error("cannot look for quiet sessions: %s", exc)
        reason = f"no message for {timeout:g} s (CARTMEM_SESSION_IDLE_TIMEOUT_S)"
        for session in quiet:
            log.warning("closing session %s: %s", session.id, reason, extra={"session": session.id})
            self._close(session, {"closed_by": "cartmem", "reason": reason})
            session.dirty = True
            self.stats.sessions_expired += 1
        if quiet:
            self._write_ready_clips()

    def _maybe_commit(self) -> None:
        """Commit every ``commit_interval_s``, or sooner once a session has written
        ``memory_save_clips`` clips since the last commit (a backlog read faster than real
        time would otherwise hold all its frames until the next one); after failures, back
        off (doubling up to a minute)."""
        backoff = min(60.0, self.settings.commit_interval_s * 2**self._commit_failures)
        due = time.monotonic() - self._last_commit >= backoff
        if not due and (self._commit_failures or not self._a_session_ran_ahead()):
            return
        try:
            self.commit()
        except CartmemError as exc:
            # nothing is acknowledged until a commit succeeds: keep going, try again later
            self._commit_failures += 1
            self._last_commit = time.monotonic()
            self.metrics.commits.labels("failed").inc()
            log.error("commit failed, will retry: %s", exc)

    def _a_session_ran_ahead(self) -> bool:
        limit = self.settings.memory_save_clips * self.cfg.clip_frames
        return any(s.written_not_stored >= limit for s in self.sessions.values())

    def commit(self) -> None:
        """One transaction: changed sessions (their evidence thumbnails too), dead letters,
        next offsets of owned partitions."""
        dirty = [s for s in self.sessions.values() if s.dirty]
        offsets = {tp: o for tp, o in self.positions.items() if o is not None}
        if dirty or self.dead or offsets:
            snapshots = [
                s.snapshot(
                    self.pool.get([s.id]).to_arrays()
                    if s.memory_due(self.settings.memory_save_clips)
                    else None,
                    self.model_version,
                )
                for s in dirty
            ]
            began = time.perf_counter()
            try:
                with self.database.session() as db:
                    commit_ingest_state(
                        db,
                        group=self.source.group,
                        offsets=offsets,
                        sessions=snapshots,
                        dead_letters=self.dead,
                        epochs=self.epochs,
                    )
            except FencedError as exc:
                self._drop_fenced(exc)
                self.commit()  # what is left is still ours
                return
            took, wrote = time.perf_counter() - began, sum(_snapshot_bytes(s) for s in snapshots)
            self.metrics.commit_seconds.observe(took)
            self.metrics.commit_bytes.observe(wrote)
            self.stats.commit_seconds += took
            self.stats.commit_bytes += wrote
        for s in dirty:
            s.saved()
        self.dead = []
        self._last_commit = time.monotonic()
        self._commit_failures = 0
        self.stats.commits += 1
        self.metrics.commits.labels("ok").inc()
        self.metrics.roll_rate()
        self.metrics.device_bytes.set(self.pool.device_bytes_in_use())
        try:
            self.metrics.set_lags(self.source.lags())
            self.source.commit(offsets)
        except Exception as exc:  # informational only: the database holds the real offsets
            log.debug("could not mirror offsets to the broker: %s", exc)
        closed, self.closed = self.closed, []
        for sid in closed:
            self._forget(sid)
            self.stats.sessions_closed += 1
            self.on_session_closed(sid)  # hook: reconciliation starts here


def _where(record: Record) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _context(record: Record, session_id: str | None) -> dict[str, object]:
    """A record's place, and its session when known, for a log line (``app.logs``)."""
    where: dict[str, object] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    return where | ({"session": session_id} if session_id else {})


def _snapshot_bytes(snapshot: SessionSnapshot) -> int:
    """What a commit writes of one session: its arrays and new thumbnails."""
    blobs = (*snapshot.memory, *snapshot.pending, *snapshot.band)
    return sum(len(b.data) for b in blobs) + sum(len(t.data) for t in snapshot.thumbnails)


def _camera(session: LiveSession, env: Envelope) -> dict[str, str]:
    """Which camera a loss is of, once a session has several (one camera: no key, as before)."""
    return {"camera": env.camera} if len(session.cameras.tracks) > 1 else {}


def _end_info(cameras: CameraSet, last: dict[str, object]) -> dict[str, object]:
    """The session's ``end_info``: its last camera's session_end; with several cameras, each
    camera's under ``cameras``."""
    info = dict(last)
    if len(cameras.tracks) > 1:
        info["cameras"] = {str(t.id): t.end_info for t in cameras.tracks}
    return info
