"""Where the handled product and the hand are at any frame of an action.

An action moves the product from a source pose to a destination pose (shelf slot, the
hold in front of the camera, a cart slot). The hand first reaches an object that lies
still (taking), or lets go and withdraws after placing it (putting back), so the box of
the handled product is defined on every frame of the action.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

#: Share of a take (from shelf or cart) spent reaching before the product moves.
REACH_SHARE = 0.35
#: Share of a put (into cart or onto shelf) spent moving; the rest is letting go.
PLACE_SHARE = 0.7


@dataclass(frozen=True)
class Pose:
    """A product on screen: centre and height in frame pixels, tilt, and how it is turned.

    ``turn`` is the cosine of the rotation about the vertical axis: 1 shows the front
    full width, values near 0 show it edge-on, negative values show the back.
    """

    cx: float
    cy: float
    height: float
    angle: float = 0.0  # degrees, counter-clockwise
    turn: float = 1.0


@dataclass(frozen=True)
class Action:
    """One activity on one physical item, in frames ``[start, end)`` of the video."""

    activity: str
    sku: str
    item: int  # the shelf facing the physical item belongs to
    start: int
    end: int
    src: Pose
    dst: Pose

    def progress(self, frame: int) -> float:
        """0 at the first frame, approaching 1 at the last."""
        return (frame - self.start) / (self.end - self.start)


def smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def lerp_pose(a: Pose, b: Pose, q: float) -> Pose:
    return Pose(
        cx=a.cx + (b.cx - a.cx) * q,
        cy=a.cy + (b.cy - a.cy) * q,
        height=a.height + (b.height - a.height) * q,
        angle=a.angle + (b.angle - a.angle) * q,
        turn=a.turn + (b.turn - a.turn) * q,
    )


def product_pose(action: Action, frame: int) -> Pose:
    """The handled product's pose at ``frame`` (which lies inside the action)."""
    p = action.progress(frame)
    if action.activity in ("take_from_shelf", "take_out_of_cart"):
        return lerp_pose(action.src, action.dst, smoothstep((p - REACH_SHARE) / (1 - REACH_SHARE)))
    if action.activity in ("put_in_cart", "return_to_shelf"):
        return lerp_pose(action.src, action.dst, smoothstep(p / PLACE_SHARE))
    # inspect: bring it closer, tilt it, turn it all the way round once.
    envelope = math.sin(math.pi * p)
    return replace(
        action.src,
        cy=action.src.cy - 0.08 * action.src.height * envelope,
        height=action.src.height * (1.0 + 0.3 * envelope),
        angle=14.0 * math.sin(3.0 * math.pi * p) * envelope,
        turn=math.cos(2.0 * math.pi * p),
    )


def grip_point(pose: Pose, aspect: float) -> tuple[float, float]:
    """Where the hand holds a product: its right side, a little below the middle."""
    half_width = 0.5 * pose.height * aspect * max(abs(pose.turn), 0.2)
    return (pose.cx + 0.8 * half_width, pose.cy + 0.12 * pose.height)


def hand_point(
    action: Action, frame: int, aspect: float, rest: tuple[float, float]
) -> tuple[float, float]:
    """The hand's position: travelling between ``rest`` and the grip, or at the grip."""
    p = action.progress(frame)
    pose = product_pose(action, frame)
    grip = grip_point(pose, aspect)
    if action.activity in ("take_from_shelf", "take_out_of_cart") and p < REACH_SHARE:
        return _towards(rest, grip, smoothstep(p / REACH_SHARE))
    if action.activity in ("put_in_cart", "return_to_shelf") and p > PLACE_SHARE:
        return _towards(grip, rest, smoothstep((p - PLACE_SHARE) / (1 - PLACE_SHARE)))
    return grip


def _towards(a: tuple[float, float], b: tuple[float, float], q: float) -> tuple[float, float]:
    return (a[0] + (b[0] - a[0]) * q, a[1] + (b[1] - a[1]) * q)
