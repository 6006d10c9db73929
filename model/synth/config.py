"""What the synthetic store generator draws, as frozen dataclasses grouped by concern.

The defaults are chosen for learning with the ``tiny`` preset on a CPU: small frames (the
backbone resizes them to 128 px anyway), a handled product at least a fifth of the frame
side, activities lasting a few seconds so that 1-2 FPS memory sampling sees several frames
of each, and a cart band at the bottom of every frame so that "into the cart" and "back to
the shelf" move the product to visibly different places.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from model.synth.errors import SynthConfigError

#: The activity classes, in the order the model's heads use. Every span, box and query of a
#: dataset names one of these.
ACTIVITIES: tuple[str, ...] = (
    "take_from_shelf",
    "put_in_cart",
    "inspect",
    "return_to_shelf",
    "take_out_of_cart",
)

#: Version of the on-disk format described in ``docs/DATASET.md``.
FORMAT_VERSION = 1
#: Version of the drawing code: same seed and same version give the same dataset.
GENERATOR_VERSION = "cartmem.synth/1"

#: Query window buckets, in order; each query carries the name of the one it falls in.
BUCKETS: tuple[str, ...] = ("short", "medium", "long")
#: Query kinds, in order.
QUERY_KINDS: tuple[str, ...] = ("activity", "object", "time")


@dataclass(frozen=True)
class VideoConfig:
    """How a video is encoded: small H.264 frames with a keyframe at a fixed interval."""

    width: int = 192
    height: int = 144
    fps: int = 10
    box_fps: int = 5  # annotation rate (ReST's object ground truth is at 5 FPS)
    keyframe_seconds: float = 2.0  # fixed GOP, no scene cuts: publish can cut at keyframes
    crf: int = 23
    preset: str = "veryfast"


@dataclass(frozen=True)
class ScriptConfig:
    """The shopper's behaviour: how long actions last and what happens between them."""

    take_seconds: tuple[float, float] = (2.4, 4.0)
    put_seconds: tuple[float, float] = (2.0, 3.2)
    inspect_seconds: tuple[float, float] = (3.0, 6.0)
    return_seconds: tuple[float, float] = (2.4, 4.0)
    take_out_seconds: tuple[float, float] = (2.0, 3.2)
    # Browsing between episodes: the camera pauses, then pans to the next product.
    pause_seconds: tuple[float, float] = (1.0, 4.0)
    pan_pixels_per_second: tuple[float, float] = (50.0, 110.0)
    # Relative weights of the episode kinds (see ``script.EPISODES``).
    episode_weights: tuple[float, ...] = (4.0, 2.0, 1.5, 1.0, 2.0, 1.0)
    facings_per_sku: int = 3  # identical copies of a product side by side on the shelf


@dataclass(frozen=True)
class DistractorConfig:
    """Things that happen without being an activity: the model must learn to ignore them."""

    empty_reach_per_minute: float = 2.0  # the hand reaches towards a shelf and comes back
    passerby_per_minute: float = 2.0  # another shopper walks between camera and shelf
    passing_product_per_minute: float = 2.0  # a product carried past by someone else
    occluder_per_minute: float = 1.0  # something close to the lens covers part of the frame
    flicker_per_minute: float = 1.0  # the light dims for a moment
    noise_sigma: tuple[float, float] = (1.5, 4.0)  # per-video sensor noise, in 8-bit levels
    gain: tuple[float, float] = (0.85, 1.1)  # per-video exposure


@dataclass(frozen=True)
class QueryConfig:
    """ReST-style queries: how many, and the window length buckets."""

    per_bucket: int = 16  # queries per kind and bucket per video (fewer if none fit)
    # Window lengths in seconds: a query is in the first bucket whose maximum it does not
    # exceed; "long" runs up to the whole video.
    short_seconds: tuple[float, float] = (8.0, 30.0)
    medium_seconds: tuple[float, float] = (30.0, 120.0)
    long_seconds: tuple[float, float] = (120.0, float("inf"))
    negative_fraction: float = 0.15  # activity queries about a product nobody touched

    def bucket_range(self, bucket: str) -> tuple[float, float]:
        return {
            "short": self.short_seconds,
            "medium": self.medium_seconds,
            "long": self.long_seconds,
        }[bucket]

    def bucket_of(self, seconds: float) -> str | None:
        """The bucket a window of this length belongs to, None if shorter than any."""
        for bucket in BUCKETS:
            low, high = self.bucket_range(bucket)
            if low <= seconds <= high:
                return bucket
        return None


@dataclass(frozen=True)
class SynthConfig:
    """Everything the generator draws except the number/length of videos and the seed."""

    num_skus: int = 24
    video: VideoConfig = field(default_factory=VideoConfig)
    script: ScriptConfig = field(default_factory=ScriptConfig)
    distractors: DistractorConfig = field(default_factory=DistractorConfig)
    queries: QueryConfig = field(default_factory=QueryConfig)
    split: tuple[float, float, float] = (0.70, 0.15, 0.15)  # train, val, test by video

    @classmethod
    def held_out(cls) -> SynthConfig:
        """Every video in the test split: sessions of a seed's store that training on that
        seed never reads (a video's seed follows from seed, split and index)."""
        return cls(split=(0.0, 0.0, 1.0))

    def __post_init__(self) -> None:
        self._validate()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, written into ``dataset.json`` so a dataset says how it was made."""
        out = dataclasses.asdict(self)
        out["queries"]["long_seconds"] = [self.queries.long_seconds[0], None]
        return out

    def _validate(self) -> None:
        video = self.video
        if not 2 <= self.num_skus <= 96:
            raise SynthConfigError("SynthConfig.num_skus must be between 2 and 96.")
        if video.width % 2 or video.height % 2 or min(video.width, video.height) < 64:
            raise SynthConfigError("Frame width and height must be even and at least 64 pixels.")
        if video.box_fps <= 0 or video.fps % video.box_fps:
            raise SynthConfigError("VideoConfig.fps must be a whole multiple of box_fps.")
        if video.keyframe_seconds * video.fps < 1:
            raise SynthConfigError("VideoConfig.keyframe_seconds must span at least one frame.")
        if len(self.split) != 3 or min(self.split) < 0 or sum(self.split) <= 0:
            raise SynthConfigError("SynthConfig.split must be three non-negative fractions.")
        if len(self.script.episode_weights) != 6 or min(self.script.episode_weights) < 0:
            raise SynthConfigError("ScriptConfig.episode_weights must be six weights >= 0.")
        if self.script.facings_per_sku < 1:
            raise SynthConfigError("ScriptConfig.facings_per_sku must be at least 1.")
        for name in ("take", "put", "inspect", "return", "take_out"):
            low, high = getattr(self.script, f"{name}_seconds")
            if not 1.0 <= low <= high:
                raise SynthConfigError(f"ScriptConfig.{name}_seconds must be >= 1 s, low first.")
        if not 0.0 <= self.queries.negative_fraction < 1.0:
            raise SynthConfigError("QueryConfig.negative_fraction must be in [0, 1).")
