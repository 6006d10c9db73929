"""Never-filmed stores rendered in worker processes: the same stores, at the input size."""

from __future__ import annotations

import numpy as np

from model.train.sampled_frames import sampled_stores


def test_stores_rendered_by_worker_processes_are_the_ones_rendered_here() -> None:
    here = sampled_stores(4, 3, 5, fps=1, size=32, workers=1)
    there = sampled_stores(4, 3, 5, fps=1, size=32, workers=2)
    assert [s.annotation for s in here] == [s.annotation for s in there]
    for a, b in zip(here, there, strict=True):
        assert a.frames.shape == (5, 32, 32, 3) and a.pictures.shape[1:] == (32, 32, 3)
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.pictures, b.pictures)
