"""One live session's ingest state, and its round trip through a commit snapshot."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from app.array_blobs import array_of, blob_of
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
from app.video.cart_band import ARRAY_NAME as CART_CELLS
from app.video.cart_band import CART_TOP, kept_cells
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
    # Commits follow change. The stored memory may lag the live one by a few clips: the
    # lengths of the clips written since it was stored are ``unsaved_clips``, and their
    # frames stay stored with the pending ones, so a restart replays them (exactly) into
    # the stored memory. Each frame is written once: ``fresh`` holds the frames not stored
    # yet that a commit may need (the first at step ``fresh_start``), ``stored_frames``
    # names the stored frame arrays and the steps [start, end) each covers, up to
    # ``stored_upto``.
    unsaved_clips: list[int] = field(default_factory=list)
    saved_frames_seen: int = 0  # frames in the stored memory
    save_memory_now: bool = False  # a clip was lost: store the memory at the next commit
    fresh: list[np.ndarray] = field(default_factory=list)
    fresh_start: int = 0
    stored_frames: dict[str, tuple[int, int]] = field(default_factory=dict)
    stored_upto: int = 0
    # after a restart: (clip lengths, their frames) to write into the stored memory again
    replay: tuple[list[int], list[np.ndarray]] | None = None
    last_message_at: float = field(default_factory=time.time)  # wall clock, for expiry
    evidence: ThumbnailPolicy = OFF
    thumbnails: ThumbnailKeeper = field(init=False)
    camera_skew_s: float = 30.0  # CARTMEM_CAMERA_SKEW_S
    # the cart band of every frame written into the memory, a (T, h, w, 3) array a clip
    # (``app.video.cart_band``), stored with the memory; None: not known from the first
    # step on (stored before it was kept, frames too small), so none is kept
    cart_cells: list[np.ndarray] | None = field(default_factory=list)
    cart_top: float = CART_TOP  # CARTMEM_CART_BAND_TOP
    _stored_after_commit: tuple[dict[str, tuple[int, int]], int, bool] = field(
        default=({}, 0, False), init=False, repr=False
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
            len(self.fresh),
            self.cameras.savepoint(),
            (self.status, self.store_id, self.start_info, self.end_info),
            len(self.losses),
            self.thumbnails.savepoint(),
        )

    def rollback(self, point: _Savepoint) -> None:
        del self.pending[point.pending :]
        del self.fresh[point.fresh :]
        self.cameras.rollback(point.cameras)
        self.status, self.store_id, self.start_info, self.end_info = point.fields
        del self.losses[point.losses :]
        self.thumbnails.rollback(point.thumbnails)

    @property
    def written_not_stored(self) -> int:
        """Frames written into the memory and not stored by a commit yet, to within a clip
        (``fresh`` ends with the pending frames, save those a commit stored before)."""
        return max(0, len(self.fresh) - len(self.pending))

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
            self.fresh.append(frame)

    @property
    def pending_start(self) -> int:
        """The session step of the first pending frame."""
        return self.cameras.next_step - len(self.pending)

    def memory_due(self, every_clips: int) -> bool:
        """Does the next commit store the memory: ``every_clips`` clips since it last did,
        the session ended (answers read it), or a clip was lost."""
        return bool(self.unsaved_clips) and (
            len(self.unsaved_clips) >= every_clips or self.closed or self.save_memory_now
        )

    def keep_cart_cells(self, clip: np.ndarray) -> None:
        """The cart band of a clip (T, H, W, 3) just written into the memory: one row of
        cells per memory step, so the band stays aligned with the memory's steps."""
        if self.cart_cells is None:
            return
        cells = kept_cells(clip, self.cart_top)
        if cells is None or (self.cart_cells and cells.shape[1:] != self.cart_cells[0].shape[1:]):
            self.cart_cells = None
            return
        self.cart_cells.append(cells)

    def _band(self) -> tuple[ArrayBlob, ...]:
        """The cart band of the memory's steps, stored with it, when it is known for each."""
        if not self.cart_cells:
            return ()
        cells = np.concatenate(self.cart_cells)
        if len(cells) != self.frames_seen:  # a step without its cells: the band is unknown
            self.cart_cells = None
            return ()
        self.cart_cells = [cells]
        return (blob_of(CART_CELLS, cells),)

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
        saving = memory_arrays is not None
        band = self._band() if saving else ()
        start, end = self.pending_start, self.cameras.next_step
        unsaved = [] if saving else list(self.unsaved_clips)
        keep_from = start - sum(unsaved)  # the first frame the stored memory lacks
        kept = {name: span for name, span in self.stored_frames.items() if span[1] > keep_from}
        pending: list[ArrayBlob] = []
        new_from = max(self.stored_upto, keep_from)
        if saving:  # no later commit needs the frames before: the memory holds them (and
            # until a commit stores it, every commit stores it), so a database outage
            # does not pile them up here
            self.fresh, self.fresh_start = self.fresh[new_from - self.fresh_start :], new_from
        if new_from < end:  # frames since the last commit, in one array named by its step
            frames = np.stack(self.fresh[new_from - self.fresh_start :])
            pending.append(blob_of(f"frames.{new_from}", frames))
            kept[f"frames.{new_from}"] = (new_from, end)
        self._stored_after_commit = (kept, end, saving)
        if timeline.held is not None:
            pending.append(blob_of("held", timeline.held))
        cameras = camera_state(self.cameras)
        pending += [blob_of(name, array) for name, array in sorted(cameras.arrays.items())]
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
            frames_seen=self.frames_seen if saving else self.saved_frames_seen,
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
                "unsaved_clips": unsaved,
                **cameras.info,
            },
            memory=tuple(blob_of(k, v) for k, v in sorted((memory_arrays or {}).items())),
            pending=tuple(pending),
            pending_kept=tuple(sorted((set(kept) | set(cameras.kept)) - {b.name for b in pending})),
            band=band,
            thumbnails=self.thumbnails.added(),
            thumbnails_dropped=self.thumbnails.dropped_times_us(),
        )

    def saved(self) -> None:
        """The commit of the latest :meth:`snapshot` succeeded: that is what is stored."""
        self.stored_frames, self.stored_upto, memory_saved = self._stored_after_commit
        self.cameras.saved()
        self.dirty, self.fresh, self.fresh_start = False, [], self.stored_upto
        if memory_saved:
            self.unsaved_clips, self.save_memory_now = [], False
            self.saved_frames_seen = self.frames_seen
        self.thumbnails.saved()

    @classmethod
    def from_snapshot(
        cls,
        snap: SessionSnapshot,
        fps: float,
        evidence: ThumbnailPolicy = OFF,
        camera_skew_s: float = 30.0,
        cart_top: float = CART_TOP,
    ) -> LiveSession:
        info = snap.pending_info
        stored_cells = [array_of(b, writable=True) for b in snap.band if b.name == CART_CELLS]
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
            saved_frames_seen=snap.frames_seen,
            cart_cells=stored_cells if stored_cells or snap.frames_seen == 0 else None,
            cart_top=cart_top,
        )
        session.thumbnails = ThumbnailKeeper(
            evidence,
            fps,
            step=int(info.get("evidence_step") or 0) or None,
            stored=dict(snap.thumbnail_sizes),
        )
        arrays = {b.name: array_of(b, writable=True) for b in snap.pending}
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
        session._load_frames(arrays, info.get("pending_start"), info.get("unsaved_clips") or [])
        return session

    def _load_frames(
        self, arrays: dict[str, np.ndarray], start: int | None, unsaved: list[int]
    ) -> None:
        """The stored frames: those of the clips to replay, then the pending ones.

        ``frames.K`` holds steps from K on (the first array may begin with frames the
        stored memory already holds); a snapshot from before frames were stored one commit
        at a time holds the pending ones in ``frames`` and no clip to replay.
        """
        if "frames" in arrays:  # stored whole: the next commit stores them the new way
            self.pending = list(arrays["frames"])
            self.fresh = list(self.pending)
            self.fresh_start = self.stored_upto = self.pending_start
            return
        needed_from = int(start or 0) - sum(unsaved)
        window: list[np.ndarray] = []
        for first_step, name in sorted(
            (int(name.split(".", 1)[1]), name) for name in arrays if name.startswith("frames.")
        ):
            frames = arrays[name]
            self.stored_frames[name] = (first_step, first_step + len(frames))
            window += list(frames[max(0, needed_from - first_step) :])
        taken = sum(unsaved)
        self.pending = window[taken:]
        self.fresh_start = self.stored_upto = self.cameras.next_step
        if unsaved:
            self.replay = ([int(n) for n in unsaved], window[:taken])


@dataclass(frozen=True)
class _Savepoint:
    pending: int
    fresh: int
    cameras: CamerasSavepoint
    fields: tuple[str, str | None, dict[str, Any], dict[str, Any] | None]
    losses: int
    thumbnails: KeeperSavepoint


def memory_arrays(snap: SessionSnapshot) -> dict[str, np.ndarray]:
    """The stored memory's arrays."""
    return {b.name: array_of(b, writable=True) for b in snap.memory}
