"""Evidence thumbnails: which of a session's memory frames are kept as small JPEGs, and
how their number and bytes stay bounded however long the session runs.

Sample ``k`` of the session timeline (time ``k / fps``) is kept when ``k`` is a multiple of
the session's ``step``. When the kept thumbnails pass ``max_frames`` or ``max_bytes``,
``step`` doubles and every thumbnail off the new grid goes: the survivors still cover the
whole session, evenly, at half the rate. Everything depends only on the samples in order
(not on how chunks or commits cut them), so a session replayed from its last commit keeps
exactly the thumbnails an uninterrupted run keeps; ``step`` travels with the commit.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.settings import Settings
from app.video.timeline import sample_time_us
from storage.evidence import JPEG, Thumbnail

JPEG_QUALITY = 75  # a shelf and a hand stay readable at 160 px; ~6-7 KB a synthetic frame


@dataclass(frozen=True)
class ThumbnailPolicy:
    """How a session's thumbnails are kept (``CARTMEM_EVIDENCE_*``)."""

    every: int  # memory samples between thumbnails at first; 0 keeps none
    width: int  # pixels; narrower frames keep their own size
    max_frames: int
    max_bytes: int

    @classmethod
    def of(cls, settings: Settings, fps: float) -> ThumbnailPolicy:
        """The policy for a memory written at ``fps`` frames per second."""
        every = 0
        if settings.evidence_fps > 0:
            # only the memory's samples are decoded, so no faster than the memory's rate
            every = max(1, round(fps / settings.evidence_fps))
        return cls(
            every,
            settings.evidence_width,
            settings.evidence_max_frames,
            settings.evidence_max_bytes_per_session,
        )


OFF = ThumbnailPolicy(every=0, width=1, max_frames=1, max_bytes=1)


class ThumbnailKeeper:
    """One session's thumbnails: the (sample, bytes) of every kept one, the pictures taken
    since the last commit, and the stored ones thinning dropped since then."""

    def __init__(
        self,
        policy: ThumbnailPolicy,
        fps: float,
        *,
        step: int | None = None,
        stored: Mapping[int, int] | None = None,
    ) -> None:
        """``step`` and ``stored`` (video time in microseconds -> bytes) resume a session
        from its last commit."""
        self.policy = policy
        self.fps = fps
        # samples between kept thumbnails: doubles at each thinning; 0 while evidence is off
        self.step = (step or policy.every) if policy.every else 0
        self.sizes = {self._index(t): n for t, n in (stored or {}).items()}  # sample -> bytes
        self.total_bytes = sum(self.sizes.values())
        self.new: dict[int, Thumbnail] = {}  # sample -> picture not committed yet
        self.dropped: set[int] = set()  # samples of committed thumbnails thinned away

    def take(self, first: int, samples: np.ndarray) -> None:
        """The timeline emitted ``samples`` (K, H, W, 3), sample ``first`` onwards."""
        if not self.step:
            return
        for k, frame in enumerate(samples, start=first):
            if k % self.step:
                continue
            thumb = encode_thumbnail(frame, sample_time_us(k, self.fps), self.policy.width)
            self.new[k] = thumb
            self.sizes[k] = len(thumb.data)
            self.total_bytes += len(thumb.data)
            self._thin()

    def _thin(self) -> None:
        p = self.policy
        while len(self.sizes) > 1 and (
            len(self.sizes) > p.max_frames or self.total_bytes > p.max_bytes
        ):
            self.step *= 2
            for k in [k for k in self.sizes if k % self.step]:
                self.total_bytes -= self.sizes.pop(k)
                if self.new.pop(k, None) is None:
                    self.dropped.add(k)

    # ---------------------------------------------------------------- commits
    def added(self) -> tuple[Thumbnail, ...]:
        return tuple(self.new[k] for k in sorted(self.new))

    def dropped_times_us(self) -> tuple[int, ...]:
        return tuple(sample_time_us(k, self.fps) for k in sorted(self.dropped))

    def saved(self) -> None:
        """The last commit stored ``added`` and deleted ``dropped``."""
        self.new.clear()
        self.dropped.clear()

    def savepoint(self) -> KeeperSavepoint:
        return KeeperSavepoint(self.step, dict(self.sizes), dict(self.new), set(self.dropped))

    def rollback(self, state: KeeperSavepoint) -> None:
        self.step, self.sizes = state.step, dict(state.sizes)
        self.new, self.dropped = dict(state.new), set(state.dropped)
        self.total_bytes = sum(self.sizes.values())

    def _index(self, time_us: int) -> int:
        # exact inverse of sample_time_us for any fps below a million
        return round(time_us * self.fps / 1_000_000)


@dataclass(frozen=True)
class KeeperSavepoint:
    """A keeper's whole state, so that a message that fails to apply leaves no thumbnail."""

    step: int
    sizes: dict[int, int]
    new: dict[int, Thumbnail]
    dropped: set[int]


def encode_thumbnail(frame: np.ndarray, time_us: int, width: int) -> Thumbnail:
    """``frame`` (H, W, 3) uint8 as a JPEG at most ``width`` pixels wide (never enlarged)."""
    image = Image.fromarray(frame)
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return Thumbnail(time_us, image.width, image.height, out.getvalue(), JPEG)
