"""The shopper's arm and hand, reaching in from the bottom-right corner of the frame.

The hand is what distinguishes an activity from a product that merely moves (a passing
product has no arm from the camera side), so it is drawn on top of the handled product,
fingers over its edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import ImageDraw

from model.synth.products import RGB


@dataclass(frozen=True)
class HandLook:
    skin: RGB
    sleeve: RGB
    scale: float  # arm width in pixels


def draw_hand(
    draw: ImageDraw.ImageDraw, look: HandLook, point: tuple[float, float], size: tuple[int, int]
) -> None:
    """Arm from outside the bottom-right corner to ``point``, palm and fingers at ``point``."""
    w, h = size
    shoulder = (w * 1.08, h * 1.3)
    elbow = (
        shoulder[0] + (point[0] - shoulder[0]) * 0.45,
        shoulder[1] + (point[1] - shoulder[1]) * 0.45,
    )
    arm = round(look.scale)
    draw.line((shoulder, elbow), fill=look.sleeve, width=round(arm * 1.3))
    draw.line((elbow, point), fill=look.skin, width=arm)
    _disc(draw, elbow, arm * 0.5, look.skin)
    palm = arm * 0.75
    _disc(draw, point, palm, look.skin)
    # Fingers point away from the shoulder, across the product's edge.
    angle = math.atan2(point[1] - shoulder[1], point[0] - shoulder[0])
    for k, spread in enumerate((-0.5, -0.15, 0.2)):
        length = palm * (1.5 - 0.1 * k)
        tip = (
            point[0] + length * math.cos(angle + spread),
            point[1] + length * math.sin(angle + spread),
        )
        draw.line((point, tip), fill=look.skin, width=max(2, round(arm * 0.35)))
        _disc(draw, tip, arm * 0.18, _shade(look.skin))


def _disc(
    draw: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float, colour: RGB
) -> None:
    x, y = centre
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def _shade(colour: RGB) -> RGB:
    return (round(colour[0] * 0.85), round(colour[1] * 0.85), round(colour[2] * 0.85))
