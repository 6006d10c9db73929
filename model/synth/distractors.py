"""Things in the video that are not activities: people and products passing, lens occlusion,
lighting drift and flicker, sensor noise.

They exist so that a model cannot answer from "something moved" or "the image got darker";
none of them produces a span or a box. The hand's empty reaches live in ``script`` because
they must not overlap the hand's real actions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from model.synth.config import SynthConfig
from model.synth.products import RGB, ProductStyle, hsv_colour
from model.synth.scene import sprite

SKIN_TONES: tuple[RGB, ...] = (
    (241, 194, 160),
    (224, 172, 125),
    (198, 134, 94),
    (141, 85, 54),
    (94, 60, 40),
)


@dataclass(frozen=True)
class Crossing:
    """Something moving horizontally across the frame during frames ``[start, end)``.

    ``kind`` is ``passerby`` (a shopper walking between camera and shelf) or ``product``
    (a product someone else carries past, held in a hand of another colour).
    """

    kind: str
    start: int
    end: int
    left_to_right: bool
    cy: float  # centre height in pixels
    size: float  # height in pixels
    colour: RGB  # shirt colour, or skin colour of the carrying hand
    sku: str = ""  # what a passing product is


@dataclass(frozen=True)
class Occluder:
    """A dark blur close to the lens (a sleeve, a sign) sliding over the frame."""

    start: int
    end: int
    path: tuple[float, float, float, float]  # x0, y0 -> x1, y1 of its centre, pixels
    radius: float
    colour: RGB


@dataclass(frozen=True)
class Flicker:
    start: int
    end: int
    depth: float  # the light drops to (1 - depth) at the middle


@dataclass(frozen=True)
class Distractors:
    """All distractors of one video plus its lighting and noise."""

    crossings: tuple[Crossing, ...]
    occluders: tuple[Occluder, ...]
    flickers: tuple[Flicker, ...]
    tint: tuple[float, float, float]  # per-channel exposure gain
    drift: tuple[float, float, float]  # amplitude, period in frames, phase of slow light drift
    noise_sigma: float

    def events(self) -> list[tuple[str, int, int]]:
        """(kind, start, end) of every event, for the annotation file."""
        out = [
            (c.kind if c.kind == "passerby" else "passing_product", c.start, c.end)
            for c in self.crossings
        ]
        out += [("occluder", o.start, o.end) for o in self.occluders]
        out += [("flicker", f.start, f.end) for f in self.flickers]
        return sorted(out, key=lambda e: (e[1], e[0]))

    def gain(self, frame: int) -> np.ndarray:
        """Per-channel light gain at ``frame``, shape (3,)."""
        amplitude, period, phase = self.drift
        g = 1.0 + amplitude * math.sin(2.0 * math.pi * frame / period + phase)
        for f in self.flickers:
            if f.start <= frame < f.end:
                g *= 1.0 - f.depth * math.sin(math.pi * (frame - f.start) / (f.end - f.start))
        return np.array(self.tint, np.float32) * np.float32(g)


def schedule_distractors(
    rng: np.random.Generator, skus: list[str], config: SynthConfig, num_frames: int
) -> Distractors:
    """Random distractor events over the whole video (they may overlap actions: occlusion)."""
    cfg, video = config.distractors, config.video
    minutes = num_frames / video.fps / 60.0
    w, h = video.width, video.height

    def times(rate: float, seconds: tuple[float, float]) -> list[tuple[int, int]]:
        out = []
        for _ in range(int(rng.poisson(rate * minutes))):
            length = max(2, round(float(rng.uniform(*seconds)) * video.fps))
            start = int(rng.integers(0, max(1, num_frames - length)))
            out.append((start, min(num_frames, start + length)))
        return sorted(out)

    crossings = [_passerby(rng, s, e, h) for s, e in times(cfg.passerby_per_minute, (2.0, 5.0))] + [
        _passing_product(rng, s, e, h, skus)
        for s, e in times(cfg.passing_product_per_minute, (1.5, 3.0))
    ]
    occluders = [_occluder(rng, s, e, w, h) for s, e in times(cfg.occluder_per_minute, (0.8, 2.0))]
    flickers = [
        Flicker(s, e, depth=float(rng.uniform(0.2, 0.4)))
        for s, e in times(cfg.flicker_per_minute, (0.4, 1.5))
    ]
    exposure = float(rng.uniform(*cfg.gain))
    r, g, b = (exposure * float(x) for x in rng.uniform(0.93, 1.07, size=3))
    drift_period = float(rng.uniform(20, 60)) * video.fps
    return Distractors(
        crossings=tuple(sorted(crossings, key=lambda c: (c.start, c.kind))),
        occluders=tuple(occluders),
        flickers=tuple(flickers),
        tint=(r, g, b),
        drift=(float(rng.uniform(0.02, 0.06)), drift_period, float(rng.uniform(0, 2 * math.pi))),
        noise_sigma=float(rng.uniform(*cfg.noise_sigma)),
    )


def _passerby(rng: np.random.Generator, start: int, end: int, h: int) -> Crossing:
    return Crossing(
        kind="passerby",
        start=start,
        end=end,
        left_to_right=bool(rng.random() < 0.5),
        cy=h * float(rng.uniform(0.3, 0.5)),
        size=h * float(rng.uniform(0.5, 0.8)),
        colour=hsv_colour(float(rng.random()), 0.6, 0.6),
    )


def _passing_product(
    rng: np.random.Generator, start: int, end: int, h: int, skus: list[str]
) -> Crossing:
    return Crossing(
        kind="product",
        start=start,
        end=end,
        left_to_right=bool(rng.random() < 0.5),
        cy=h * float(rng.uniform(0.2, 0.45)),
        size=h * float(rng.uniform(0.22, 0.34)),
        colour=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        sku=skus[int(rng.integers(len(skus)))],
    )


def _occluder(rng: np.random.Generator, start: int, end: int, w: int, h: int) -> Occluder:
    """Slides in from the left or right edge towards somewhere inside the frame."""
    return Occluder(
        start=start,
        end=end,
        path=(
            w * float(rng.choice([-0.2, 1.2])),
            h * float(rng.uniform(0, 1)),
            w * float(rng.uniform(0.2, 0.8)),
            h * float(rng.uniform(0.2, 0.8)),
        ),
        radius=h * float(rng.uniform(0.25, 0.45)),
        colour=hsv_colour(float(rng.random()), 0.3, 0.2),
    )


# ---------------------------------------------------------------------- drawing
def draw_crossings(
    image: Image.Image, distractors: Distractors, frame: int, styles: dict[str, ProductStyle]
) -> None:
    """People and carried products between the camera and the shelf (drawn over the shelf)."""
    for c in distractors.crossings:
        if not c.start <= frame < c.end:
            continue
        p = (frame - c.start) / (c.end - c.start)
        span = image.width + c.size
        x = -c.size / 2 + span * (p if c.left_to_right else 1.0 - p)
        draw = ImageDraw.Draw(image)
        if c.kind == "passerby":
            half = c.size * 0.3
            top = c.cy - c.size * 0.25
            draw.rounded_rectangle(
                (x - half, top, x + half, image.height + 10), radius=half * 0.5, fill=c.colour
            )
            draw.ellipse(
                (x - half * 0.55, top - half * 1.15, x + half * 0.55, top - half * 0.05),
                fill=(200, 160, 130),
            )
        else:
            style = styles[c.sku]
            height = max(4, round(c.size))
            product = sprite(style, max(2, round(height * style.aspect)), height)
            image.paste(product, (round(x - product.width / 2), round(c.cy - height / 2)), product)
            r = c.size * 0.18
            hx, hy = x + (product.width / 2 if c.left_to_right else -product.width / 2), c.cy
            draw.ellipse((hx - r, hy - r, hx + r, hy + r), fill=c.colour)


def apply_occluders(pixels: np.ndarray, distractors: Distractors, frame: int) -> None:
    """Blend soft dark blobs over ``pixels`` (float32, (H, W, 3)) in place."""
    for o in distractors.occluders:
        if not o.start <= frame < o.end:
            continue
        p = math.sin(0.5 * math.pi * (frame - o.start) / (o.end - o.start)) ** 2
        x0, y0, x1, y1 = o.path
        cx, cy = x0 + (x1 - x0) * p, y0 + (y1 - y0) * p
        h, w = pixels.shape[:2]
        ys, xs = np.ogrid[0:h, 0:w]
        d2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / (o.radius * o.radius)
        alpha = (np.clip(1.2 - d2, 0.0, 1.0) * 0.9).astype(np.float32)[..., None]
        pixels *= 1.0 - alpha
        pixels += alpha * np.array(o.colour, np.float32)
