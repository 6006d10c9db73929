"""The cameras of one session and how their video becomes the session's one frame per step.

Each camera keeps its own ``seq`` and its own timeline at the memory's frames per second, so
cameras never push each other "back in time". Step ``k`` of the session (time ``k / fps``)
is one picture: the cameras' samples of step ``k`` side by side in a grid (one camera: its
frame as it is, bit-identical to a one-camera session; two: left and right; up to four:
two by two), in the order the cameras first appeared. The memory's time index therefore
stays the session's clock, and every memory token of a step sees all the cameras at that
moment.

A step is combined once every camera still sending has its sample; a camera that is more
than ``skew_steps`` behind the camera furthest ahead is not waited for: its slot shows its
last frame (black before its first), and the video it sends later for steps already
combined is recorded as lost. The wait therefore holds at most ``skew_steps`` frames per
camera. A camera's ``session_end`` ends that camera (its slot keeps its last frame); the
session ends when every camera that sent anything has ended.

The whole state (each camera's timeline, waiting samples, last frame; the steps combined so
far; the grid's cell size) travels with the ingest commit, so a session replayed from its
last commit combines exactly what an uninterrupted run does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from app.contract import MAX_CAMERAS
from app.video import Timeline
from app.video.timeline import TOLERANCE_US, sample_time_us


@dataclass
class CameraTrack:
    """One camera of a session."""

    id: str | None  # None: a session stored before cameras were tracked, until its next message
    timeline: Timeline
    last_seq: int = -1
    gaps: list[tuple[int, int]] = field(default_factory=list)
    # samples its timeline emitted that are not combined yet: steps
    # ``timeline.next_index - len(waiting)`` .. ``timeline.next_index - 1``
    waiting: list[np.ndarray] = field(default_factory=list)
    end_info: dict[str, Any] | None = None  # its session_end, once sent
    # waiting samples are stored once each, like a session's pending frames: the stored
    # arrays (name -> steps [from, to)) and the step up to which they go
    stored_waiting: dict[str, tuple[int, int]] = field(default_factory=dict)
    waiting_stored_upto: int = 0
    _after_commit: tuple[dict[str, tuple[int, int]], int] | None = None

    @property
    def ended(self) -> bool:
        return self.end_info is not None

    def first_waiting_step(self) -> int:
        return self.timeline.next_index - len(self.waiting)

    def video_end_us(self) -> int:
        """Session time where this camera's video so far ends (0 before any frame)."""
        t = self.timeline
        return 0 if t.held is None else t.held_time_us + t.frame_duration_us


@dataclass
class CameraSet:
    """A session's cameras and the steps combined from them so far."""

    fps: float
    skew_steps: int
    tracks: list[CameraTrack] = field(default_factory=list)
    next_step: int = 0  # steps combined so far
    cell: tuple[int, int] | None = None  # (H, W) of one camera's slot: the first sample's size

    def get(self, camera: str) -> CameraTrack | None:
        for track in self.tracks:
            if track.id == camera:
                return track
        if len(self.tracks) == 1 and self.tracks[0].id is None:
            self.tracks[0].id = camera  # a session stored before cameras were tracked
            return self.tracks[0]
        return None

    def declare(self, cameras: list[str]) -> None:
        """A session_start's ``cameras``: each is waited for from now on (in this order,
        after those already known), though it has sent nothing yet."""
        for camera in cameras:
            if self.get(camera) is None and len(self.tracks) < MAX_CAMERAS:
                self.add(camera)

    def add(self, camera: str) -> CameraTrack:
        """A camera's first message: its timeline starts at the session's current step."""
        track = CameraTrack(camera, Timeline(self.fps, next_index=self.next_step))
        self.tracks.append(track)
        return track

    def video_end_us(self) -> int:
        return max((t.video_end_us() for t in self.tracks), default=0)

    def saved(self) -> None:
        """The commit of the latest :func:`camera_state` succeeded: its waiting samples are
        the stored ones."""
        for track in self.tracks:
            if track._after_commit is not None:
                track.stored_waiting, track.waiting_stored_upto = track._after_commit
                track._after_commit = None

    def savepoint(self) -> CamerasSavepoint:
        """What applying one message can change, so that a failure can undo it."""
        return CamerasSavepoint(
            tuple(
                (
                    t,
                    t.id,
                    (t.timeline.next_index, t.timeline.held, t.timeline.held_time_us),
                    t.timeline.frame_duration_us,
                    list(t.waiting),
                    t.end_info,
                )
                for t in self.tracks
            ),
            self.next_step,
            self.cell,
        )

    def rollback(self, point: CamerasSavepoint) -> None:
        self.tracks = []
        for track, id_, (index, held, held_time), duration, waiting, end_info in point.tracks:
            track.id, track.waiting, track.end_info = id_, waiting, end_info
            t = track.timeline
            t.next_index, t.held, t.held_time_us, t.frame_duration_us = (
                index,
                held,
                held_time,
                duration,
            )
            self.tracks.append(track)
        self.next_step, self.cell = point.next_step, point.cell

    @property
    def all_ended(self) -> bool:
        return bool(self.tracks) and all(t.ended for t in self.tracks)

    # ------------------------------------------------------------------ video in
    def push(
        self, track: CameraTrack, frames: np.ndarray, times_us: np.ndarray, frame_duration_us: int
    ) -> tuple[float, float] | None:
        """A camera's decoded frames (N, H, W, 3) at session times (N,) µs; returns the span
        (from, to) in seconds of its new video that came after the session had combined
        those steps (None when nothing was late)."""
        late = self._late_span(track, times_us, frame_duration_us)
        # steps already combined are not emitted again: the timeline skips to the present
        track.timeline.next_index = max(track.timeline.next_index, self.next_step)
        track.waiting.extend(track.timeline.push(frames, times_us, frame_duration_us))
        return late

    def end(self, track: CameraTrack, end_info: dict[str, Any]) -> None:
        """A camera's session_end: what its timeline still holds becomes its last samples."""
        track.timeline.next_index = max(track.timeline.next_index, self.next_step)
        track.waiting.extend(track.timeline.flush())
        track.end_info = end_info

    def _late_span(
        self, track: CameraTrack, times_us: np.ndarray, frame_duration_us: int
    ) -> tuple[float, float] | None:
        new = times_us[times_us > track.timeline.held_time_us]
        if not len(new) or len(self.tracks) < 2:
            return None
        start = int(new[0])
        end = min(int(new[-1]) + frame_duration_us, sample_time_us(self.next_step, self.fps))
        if end - start < 1_000_000 / self.fps - TOLERANCE_US:
            return None
        return start / 1e6, end / 1e6

    # ------------------------------------------------------------------ frames out
    def combine(self, *, final: bool = False) -> np.ndarray:
        """The session's steps that are now final (K, H, W, 3); ``final`` (the session
        ended): every step up to the camera furthest ahead."""
        if len(self.tracks) == 1:  # one camera: its samples as they are
            track = self.tracks[0]
            out, track.waiting = track.waiting, []
            self.next_step += len(out)
            if out and self.cell is None:
                self.cell = (int(out[0].shape[0]), int(out[0].shape[1]))
            held = track.timeline.held
            return _stack(out, held.shape if held is not None else (0, 0, 3))
        lead = max((t.timeline.next_index for t in self.tracks), default=0)
        frames: list[np.ndarray] = []
        while self.next_step < lead:
            k = self.next_step
            # a camera's waiting samples always start at the next step (its timeline never
            # emits a step already combined), so "has step k" is "has a waiting sample"
            has = [bool(t.waiting) and t.first_waiting_step() == k for t in self.tracks]
            waited = all(h or t.ended for h, t in zip(has, self.tracks, strict=True))
            if not (final or waited or lead - k > self.skew_steps):
                break
            frames.append(
                self._grid(
                    [t.waiting.pop(0) if h else None for h, t in zip(has, self.tracks, strict=True)]
                )
            )
            self.next_step += 1
        return _stack(frames, self._grid_shape())

    def _grid_shape(self) -> tuple[int, int, int]:
        """A step's picture: ``cols`` = ceil(sqrt(cameras)) slots wide, as many rows as needed."""
        if self.cell is None:
            return (0, 0, 3)
        cols = math.ceil(math.sqrt(len(self.tracks)))
        rows = math.ceil(len(self.tracks) / cols)
        return (rows * self.cell[0], cols * self.cell[1], 3)

    def _grid(self, samples: list[np.ndarray | None]) -> np.ndarray:
        """One step (rows*H, cols*W, 3): each camera's sample in its slot; a camera without
        one shows its newest frame (black before its first)."""
        if self.cell is None:
            first = next(s for s in samples if s is not None)
            self.cell = (int(first.shape[0]), int(first.shape[1]))
        h, w = self.cell
        cols = math.ceil(math.sqrt(len(self.tracks)))
        canvas = np.zeros(self._grid_shape(), dtype=np.uint8)
        for i, (track, sample) in enumerate(zip(self.tracks, samples, strict=True)):
            frame = sample if sample is not None else track.timeline.held
            if frame is not None:
                r, c = divmod(i, cols)
                canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = _fit(frame, self.cell)
        return canvas


@dataclass(frozen=True)
class CamerasSavepoint:
    tracks: tuple[
        tuple[
            CameraTrack,
            str | None,
            tuple[int, np.ndarray | None, int],
            int,
            list[np.ndarray],
            dict[str, Any] | None,
        ],
        ...,
    ]
    next_step: int
    cell: tuple[int, int] | None


def _fit(frame: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
    h, w = cell
    if frame.shape[:2] == (h, w):
        return frame
    return np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BILINEAR))


def _stack(frames: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """(K, H, W, 3); no frames keeps the frame shape, so results concatenate."""
    if frames:
        return np.stack(frames)
    return np.zeros((0, *shape), dtype=np.uint8)


# ---------------------------------------------------------------------- commit snapshots
# The first camera's timeline, seq and gaps keep the places a one-camera session has always
# used (the snapshot's top-level timeline fields, its "held" array, the session's seq
# columns), so a one-camera snapshot reads the same before and after cameras were tracked;
# the rest lives under the keys below.


@dataclass(frozen=True)
class CameraState:
    """What a commit stores of a session's cameras besides the first camera's timeline:
    JSON, the arrays that changed, and the names of stored arrays still needed."""

    info: dict[str, Any]
    arrays: dict[str, np.ndarray]
    kept: tuple[str, ...]


def camera_state(cameras: CameraSet) -> CameraState:
    """The cameras' state for the next commit; each waiting sample goes into one commit
    only (``waiting.I.K``: camera I's samples from step K), so a camera running ahead of
    another costs its new samples per commit, not all it holds (:meth:`CameraSet.saved`
    makes this the stored state once the commit succeeded)."""
    info: dict[str, Any] = {"next_step": cameras.next_step}
    arrays: dict[str, np.ndarray] = {}
    kept: list[str] = []
    if cameras.cell is not None:
        info["cell"] = list(cameras.cell)
    if not cameras.tracks:
        return CameraState(info, arrays, ())
    first, *more = cameras.tracks
    info["camera"] = first.id
    if first.end_info is not None and more:
        info["camera_end"] = first.end_info
    info["more_cameras"] = []
    for i, track in enumerate(cameras.tracks):
        kept += _store_waiting(track, i, arrays)
        if i == 0:
            continue
        t = track.timeline
        info["more_cameras"].append(
            {
                "id": track.id,
                "next_index": t.next_index,
                "held_time_us": t.held_time_us,
                "frame_duration_us": t.frame_duration_us,
                "last_seq": track.last_seq,
                "gaps": [list(g) for g in track.gaps],
                "end_info": track.end_info,
            }
        )
        if t.held is not None:
            arrays[f"held.{i}"] = t.held
    return CameraState(info, arrays, tuple(kept))


def _store_waiting(track: CameraTrack, i: int, arrays: dict[str, np.ndarray]) -> list[str]:
    """Add camera ``i``'s waiting samples not stored yet to ``arrays``; the names of its
    stored ones still waiting."""
    first, end = track.first_waiting_step(), track.timeline.next_index
    kept = {name: span for name, span in track.stored_waiting.items() if span[1] > first}
    new_from = max(track.waiting_stored_upto, first)
    if new_from < end:
        name = f"waiting.{i}.{new_from}"
        arrays[name] = np.stack(track.waiting[new_from - first :])
        kept[name] = (new_from, end)
    track._after_commit = (kept, end)
    return [name for name in kept if name not in arrays]


def cameras_from_state(
    info: dict[str, Any],
    arrays: dict[str, np.ndarray],
    first: CameraTrack | None,
    fps: float,
    skew_steps: int,
) -> CameraSet:
    """The inverse of :func:`camera_state`; ``first`` is the first camera as the snapshot's
    top-level fields describe it (None: the session never had a message)."""
    cameras = CameraSet(fps, skew_steps)
    if "cell" in info:
        cameras.cell = (int(info["cell"][0]), int(info["cell"][1]))
    if first is None:
        return cameras
    first.id = info.get("camera")
    first.end_info = info.get("camera_end")
    cameras.tracks.append(first)
    for i, more in enumerate(info.get("more_cameras") or [], start=1):
        timeline = Timeline(
            fps,
            next_index=int(more["next_index"]),
            held=arrays.get(f"held.{i}"),
            held_time_us=int(more["held_time_us"]),
            frame_duration_us=int(more["frame_duration_us"]),
        )
        track = CameraTrack(
            more["id"],
            timeline,
            last_seq=int(more["last_seq"]),
            gaps=[(int(a), int(b)) for a, b in more["gaps"]],
            end_info=more.get("end_info"),
        )
        cameras.tracks.append(track)
    cameras.next_step = int(info.get("next_step", first.timeline.next_index))
    for i, track in enumerate(cameras.tracks):
        _load_waiting(track, i, arrays, cameras.next_step)
    return cameras


def _load_waiting(
    track: CameraTrack, i: int, arrays: dict[str, np.ndarray], next_step: int
) -> None:
    """Camera ``i``'s waiting samples: steps ``next_step`` up to its timeline's, from the
    arrays that hold them (a snapshot from before they were stored once each holds them
    whole, ``waiting`` for the first camera and ``waiting.I`` for the others: the next
    commit stores them the new way)."""
    track.waiting, track.stored_waiting, track.waiting_stored_upto = [], {}, 0
    whole = arrays.get("waiting" if i == 0 else f"waiting.{i}")
    if whole is not None:
        track.waiting = list(whole)
        return
    prefix = f"waiting.{i}."
    for start, name in sorted(
        (int(name[len(prefix) :]), name) for name in arrays if name.startswith(prefix)
    ):
        samples = arrays[name]
        track.stored_waiting[name] = (start, start + len(samples))
        track.waiting += list(samples[max(0, next_step - start) :])
    track.waiting_stored_upto = track.timeline.next_index
