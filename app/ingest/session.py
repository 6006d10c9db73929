"""One live session's ingest state, and its round trip through a commit snapshot."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from app.ingest.cameras import (
    CameraSet,
    CamerasSavepoint,
    CameraTrack,
    camera_state,
    cameras_from_state,
)
from app.ingest.records import TopicPartition
from app.ingest.thumbnails import OFF, KeeperSavepoint, ThumbnailKeeper, ThumbnailPolicy
from app.video import Timeline
from storage import SessionStatus
from storage.ingest_state import ArrayBlob, SessionSnapshot


@dataclass
class LiveSession:
    """What the engine holds for a session besides its memory (which lives in the pool)."""

    id: str
    fps: float
    partition: TopicPartition | None = None
    status: str = SessionStatus.OPEN.value
    store_id: str | None = None
    start_info: dict[str, Any] = field(default_factory=dict)
    end_info: dict[str, Any] | None = None
    # video the session lost on the way (a truncated chunk, a clip the model could not
    # write, an expiry): one JSON object each, kept as evidence beside the memory
    losses: list[dict[str, Any]] = field(default_factory=list)
    cameras: CameraSet = field(init=False)
    pending: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) frames at memory FPS
    frames_seen: int = 0
    written: bool = False  # has any clip been written into the memory
    dirty: bool = False
    # the memory changed since the last commit stored it (a new session's empty memory has
    # never been stored): a commit writes the memory only then, so its cost follows change
    memory_changed: bool = True
    # pending frames the database holds: array name -> steps [start, end) it covers, and
    # the step up to which every pending frame is stored (each frame is written once)
    stored_frames: dict[str, tuple[int, int]] = field(default_factory=dict)
    stored_upto: int = 0
    last_message_at: float = field(default_factory=time.time)  # wall clock, for expiry
    evidence: ThumbnailPolicy = OFF
    thumbnails: ThumbnailKeeper = field(init=False)
    camera_skew_s: float = 30.0  # CARTMEM_CAMERA_SKEW_S
    _stored_after_commit: tuple[dict[str, tuple[int, int]], int] = field(
        default=({}, 0), init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.cameras = CameraSet(self.fps, self.skew_steps)
        self.thumbnails = ThumbnailKeeper(self.evidence, self.fps)

    @property
    def skew_steps(self) -> int:
        return max(1, round(self.camera_skew_s * self.fps))

    def savepoint(self) -> _Savepoint:
        """What applying one message can change, so that a failure can undo it."""
        return _Savepoint(
            len(self.pending),
            self.cameras.savepoint(),
            (self.status, self.store_id, self.start_info, self.end_info),
            len(self.losses),
            self.thumbnails.savepoint(),
        )

    def rollback(self, point: _Savepoint) -> None:
        del self.pending[point.pending :]
        self.cameras.rollback(point.cameras)
        self.status, self.store_id, self.start_info, self.end_info = point.fields
        del self.losses[point.losses :]
        self.thumbnails.rollback(point.thumbnails)

    def video_end_us(self) -> int:
        """Session time where the video seen so far ends, over all cameras (0 before any
        frame)."""
        return self.cameras.video_end_us()

    def record_loss(self, reason: str, **where: Any) -> None:
        self.losses.append({"reason": reason, **where})
        self.dirty = True

    @property
    def closed(self) -> bool:
        return self.status == SessionStatus.CLOSED.value

    def add_samples(self, samples: np.ndarray) -> None:
        """Append the frames the timeline has just emitted (at the memory FPS); a camera
        that changes resolution is resized to the session's first frame size so that a
        clip stacks. Some become evidence thumbnails, at their own size."""
        self.thumbnails.take(self.cameras.next_step - len(samples), samples)
        for frame in samples:
            if self.pending and frame.shape != self.pending[0].shape:
                h, w = self.pending[0].shape[:2]
                frame = np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BILINEAR))
            self.pending.append(frame)

    @property
    def pending_start(self) -> int:
        """The session step of the first pending frame."""
        return self.cameras.next_step - len(self.pending)

    def take_clip(self, frames: int) -> np.ndarray:
        """The next ``frames`` pending frames as a clip (T, H, W, 3)."""
        clip, self.pending = self.pending[:frames], self.pending[frames:]
        return np.stack(clip)

    # ------------------------------------------------------------------ snapshots
    def snapshot(
        self, memory_arrays: dict[str, np.ndarray] | None, model_version: str
    ) -> SessionSnapshot:
        """What the next commit writes of the session: its state, the memory when it
        changed (``memory_arrays`` None: unchanged), the pending frames not stored yet, and
        which stored ones to keep (:meth:`saved` makes that the stored state once the
        commit succeeded)."""
        first = self.cameras.tracks[0] if self.cameras.tracks else None
        timeline = first.timeline if first else Timeline(self.fps)
        pending: list[ArrayBlob] = []
        start, end = self.pending_start, self.cameras.next_step
        kept = {name: span for name, span in self.stored_frames.items() if span[1] > start}
        new_from = max(self.stored_upto, start)
        if new_from < end:  # frames since the last commit, in one array named by its step
            pending.append(_blob(f"frames.{new_from}", np.stack(self.pending[new_from - start :])))
            kept[f"frames.{new_from}"] = (new_from, end)
        self._stored_after_commit = (kept, end)
        if timeline.held is not None:
            pending.append(_blob("held", timeline.held))
        info, arrays = camera_state(self.cameras)
        pending += [_blob(name, array) for name, array in sorted(arrays.items())]
        return SessionSnapshot(
            session_id=self.id,
            status=self.status,
            store_id=self.store_id,
            start_info=self.start_info,
            end_info=self.end_info,
            last_seq=first.last_seq if first else -1,
            seq_gaps=tuple(first.gaps) if first else (),
            losses=tuple(self.losses),
            source=self.partition,
            frames_seen=self.frames_seen,
            model_version=model_version,
            fps=self.fps,
            pending_info={
                "next_index": timeline.next_index,
                "held_time_us": timeline.held_time_us,
                "frame_duration_us": timeline.frame_duration_us,
                "fps": self.fps,
                "written": self.written,
                "partition": list(self.partition) if self.partition else None,
                "evidence_step": self.thumbnails.step,
                "pending_start": start,
                **info,
            },
            memory=tuple(_blob(k, v) for k, v in sorted((memory_arrays or {}).items())),
            pending=tuple(pending),
            pending_kept=tuple(sorted(set(kept) - {b.name for b in pending})),
            thumbnails=self.thumbnails.added(),
            thumbnails_dropped=self.thumbnails.dropped_times_us(),
        )

    def saved(self) -> None:
        """The commit of the latest :meth:`snapshot` succeeded: that is what is stored."""
        self.dirty = self.memory_changed = False
        self.stored_frames, self.stored_upto = self._stored_after_commit
        self.thumbnails.saved()

    @classmethod
    def from_snapshot(
        cls,
        snap: SessionSnapshot,
        fps: float,
        evidence: ThumbnailPolicy = OFF,
        camera_skew_s: float = 30.0,
    ) -> LiveSession:
        info = snap.pending_info
        session = cls(
            id=snap.session_id,
            fps=fps,
            status=snap.status,
            store_id=snap.store_id,
            start_info=dict(snap.start_info),
            end_info=snap.end_info,
            losses=[dict(loss) for loss in snap.losses],
            frames_seen=snap.frames_seen,
            written=bool(info.get("written", bool(snap.memory))),
            evidence=evidence,
            camera_skew_s=camera_skew_s,
            memory_changed=False,
        )
        session.thumbnails = ThumbnailKeeper(
            evidence,
            fps,
            step=int(info.get("evidence_step") or 0) or None,
            stored=dict(snap.thumbnail_sizes),
        )
        arrays = {b.name: _array(b) for b in snap.pending}
        first = None
        if "camera" in info or snap.last_seq >= 0:  # (before cameras were tracked: no "camera")
            timeline = Timeline(
                fps,
                next_index=int(info.get("next_index", 0)),
                held=arrays.get("held"),
                held_time_us=int(info.get("held_time_us", -1)),
                frame_duration_us=int(info.get("frame_duration_us", 0)),
            )
            first = CameraTrack(
                None, timeline, last_seq=snap.last_seq, gaps=[(a, b) for a, b in snap.seq_gaps]
            )
        session.cameras = cameras_from_state(info, arrays, first, fps, session.skew_steps)
        session._load_pending(arrays, info.get("pending_start"))
        return session

    def _load_pending(self, arrays: dict[str, np.ndarray], start: int | None) -> None:
        """The pending frames from their stored arrays: ``frames.K`` holds steps from K on
        (the first may hold frames already written, before ``start``); a snapshot from
        before frames were stored incrementally holds them all in ``frames``."""
        if "frames" in arrays:  # stored whole: the next commit stores them the new way
            self.pending = list(arrays["frames"])
            self.stored_upto = self.pending_start
            return
        spans = sorted(
            (int(name.split(".", 1)[1]), name) for name in arrays if name.startswith("frames.")
        )
        for first_step, name in spans:
            frames = arrays[name]
            self.stored_frames[name] = (first_step, first_step + len(frames))
            self.pending += list(frames[max(0, int(start or 0) - first_step) :])
        self.stored_upto = max((end for _, end in self.stored_frames.values()), default=0)
        self.stored_upto = max(self.stored_upto, self.pending_start)


@dataclass(frozen=True)
class _Savepoint:
    pending: int
    cameras: CamerasSavepoint
    fields: tuple[str, str | None, dict[str, Any], dict[str, Any] | None]
    losses: int
    thumbnails: KeeperSavepoint


def memory_arrays(snap: SessionSnapshot) -> dict[str, np.ndarray]:
    return {b.name: _array(b) for b in snap.memory}


def _blob(name: str, array: np.ndarray) -> ArrayBlob:
    array = np.ascontiguousarray(array)
    return ArrayBlob(name, array.dtype.str, tuple(array.shape), array.tobytes())


def _array(blob: ArrayBlob) -> np.ndarray:
    return np.frombuffer(blob.data, dtype=np.dtype(blob.dtype)).reshape(blob.shape).copy()
