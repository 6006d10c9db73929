"""Resampling decoded frames to the memory FPS on the session timeline, one chunk at a time.

Sample k shows session time k / fps: the last frame whose time is at most k / fps. Samples
run while k / fps is before the end of the session (the last frame's time plus one frame
duration). A sample can only be emitted once a later frame proves nothing else falls at or
before its time, so the timeline holds one frame back; that frame and the next sample index
are its whole state, which the ingest commit stores with the pending clip.

Times are integer microseconds: a chunk's frames are placed at ``t0`` plus their offset in
the chunk, and integer arithmetic makes the result independent of how the video was cut
(the same as decoding the whole file), up to sub-microsecond rounding that the tolerance
absorbs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE_US = 1  # a frame this close after a sample time still counts as at or before it


def sample_time_us(k: int, fps: float) -> int:
    """Session time of sample ``k`` at ``fps``, in microseconds."""
    return round(k * 1_000_000 / fps)


def shows_a_sample(time_us: int, next_time_us: int, fps: float) -> bool:
    """Whether a frame at ``time_us``, followed by one at ``next_time_us``, can be a sample.

    The timeline emits such a frame for exactly the samples whose time falls in
    ``[time_us - TOLERANCE_US, next_time_us - TOLERANCE_US)``; when none does, the frame is
    never emitted and a decoder need not convert it.
    """
    start, end = time_us - TOLERANCE_US, next_time_us - TOLERANCE_US
    k = max(0, int(start * fps / 1_000_000))
    while k > 0 and sample_time_us(k - 1, fps) >= start:
        k -= 1
    while sample_time_us(k, fps) < start:
        k += 1
    return sample_time_us(k, fps) < end


def frames_needed(times_us: np.ndarray, fps: float) -> np.ndarray:
    """Which frames of a chunk (strictly increasing session times (N,)) the timeline can emit
    at ``fps`` (N,) bool.

    The first frame is always kept (it stands for every earlier sample when it opens the
    session) and so is the last (its samples run until the next chunk's first frame).
    """
    times = [*times_us.tolist(), None]
    keep = [keeps_frame(t, times[i + 1], fps, first=i == 0) for i, t in enumerate(times[:-1])]
    return np.array(keep, dtype=bool)


def keeps_frame(time_us: int, next_time_us: int | None, fps: float, *, first: bool) -> bool:
    """The rule ``frames_needed`` applies to one frame (``next_time_us`` None: the chunk's
    last frame); the decoder applies it frame by frame as they arrive."""
    return first or next_time_us is None or shows_a_sample(time_us, next_time_us, fps)


@dataclass
class Timeline:
    """Turns frames at arbitrary times into frames at exactly ``fps``; resumable from its fields."""

    fps: float
    next_index: int = 0
    held: np.ndarray | None = None  # (H, W, 3) uint8, the newest frame seen
    held_time_us: int = -1
    frame_duration_us: int = 0  # of the source, for where the session ends

    def push(self, frames: np.ndarray, times_us: np.ndarray, frame_duration_us: int) -> np.ndarray:
        """Add frames (N, H, W, 3) at session times (N,); return the samples now final (K, H, W, 3).

        Frames that go back in time (a re-sent or overlapping chunk) are ignored: the timeline
        only moves forward, so replaying a message cannot change what was emitted.
        """
        out: list[np.ndarray] = []
        for frame, t in zip(frames, times_us.tolist(), strict=True):
            if t <= self.held_time_us:
                continue
            if self.held is not None:
                while self._sample_time_us(self.next_index) < t - TOLERANCE_US:
                    out.append(self.held)
                    self.next_index += 1
            self.held, self.held_time_us = frame, t
        self.frame_duration_us = frame_duration_us
        return _stack(out, self.held)

    def flush(self) -> np.ndarray:
        """At session end: the samples up to the end of the last frame (K, H, W, 3)."""
        out: list[np.ndarray] = []
        if self.held is not None:
            end = self.held_time_us + self.frame_duration_us
            while self._sample_time_us(self.next_index) < end - TOLERANCE_US:
                out.append(self.held)
                self.next_index += 1
        return _stack(out, self.held)

    def _sample_time_us(self, k: int) -> int:
        return sample_time_us(k, self.fps)


def _stack(frames: list[np.ndarray], like: np.ndarray | None) -> np.ndarray:
    """(K, H, W, 3); an empty result keeps the frame size so results concatenate."""
    if frames:
        return np.stack(frames)
    return np.zeros((0, *(like.shape if like is not None else (0, 0, 3))), dtype=np.uint8)
