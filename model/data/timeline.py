"""Seconds on the video timeline ↔ frame steps of the memory timeline (``cfg.fps``).

Memory step ``k`` is the frame decoded for time ``k / fps`` (``model.synth.decode_video``),
and it stands for the instant ``k / fps``. So:

- an interval ``[a, b)`` in seconds covers the steps whose instant lies inside it:
  ``ceil(a * fps) .. ceil(b * fps) - 1``;
- a step interval ``[s, e)`` read back as seconds is ``[(s - 1/2) / fps, (e - 1/2) / fps)``:
  each step stands for the half step on either side of its instant, which is the unbiased
  reading when the true edges fall anywhere between two frames.
"""

from __future__ import annotations

import math

_EPS = 1e-6  # seconds * fps: float noise in times that sit on the step grid


def seconds_to_steps(start: float, end: float, fps: float, num_steps: int) -> tuple[int, int]:
    """The steps ``[s, e)`` whose instants lie in ``[start, end)``, within ``[0, num_steps)``.

    Never empty: an interval between two instants (shorter than a step) gets the step
    nearest to its middle, so every window and span has at least one step to answer on.
    """
    if num_steps <= 0:
        raise ValueError("A video needs at least one memory step.")
    s = max(0, math.ceil(start * fps - _EPS))
    e = min(num_steps, math.ceil(end * fps - _EPS))
    if e <= s:
        s = min(num_steps - 1, max(0, math.floor((start + end) / 2 * fps + 0.5)))
        e = s + 1
    return s, e


def steps_to_seconds(start: int, end: int, fps: float) -> tuple[float, float]:
    """Seconds ``[a, b)`` that the steps ``[start, end)`` stand for (see the module doc)."""
    return (start - 0.5) / fps, (end - 0.5) / fps


def nearest_step(seconds: float, fps: float) -> int:
    """The step whose instant is nearest to ``seconds`` (halves round up)."""
    return math.floor(seconds * fps + 0.5)
