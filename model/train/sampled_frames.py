"""Never-filmed stores' frames at the backbone's input size, rendered in worker processes.

``model.synth.sampled`` renders one store; backbone pretraining wants hundreds at once, at
its input size, without holding their source frames: each worker renders a store and
resizes its frames and catalog pictures before they come back.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial

import numpy as np

from model.synth.sampled import SampledStore, sampled_store
from model.train.composites import resize


def sampled_stores(
    seed: int, count: int, seconds: int, *, fps: int, size: int | None, workers: int = 1
) -> list[SampledStore]:
    """Stores ``0 .. count - 1`` of ``seed``'s never-filmed stores, ``seconds`` each at
    ``fps``, frames and pictures at ``size`` a side (None: as rendered); the same whatever
    ``workers``."""
    return list(iter_sampled_stores(seed, count, seconds, fps=fps, size=size, workers=workers))


def iter_sampled_stores(
    seed: int, count: int, seconds: int, *, fps: int, size: int | None, workers: int = 1
) -> Iterator[SampledStore]:
    """``sampled_stores`` one store at a time, in order, so that a caller who keeps only
    part of each (crops, say) never holds all their frames."""
    render = partial(_sampled_at_size, seed, seconds=seconds, fps=fps, size=size)
    if workers <= 1 or count < 2:
        yield from (render(index) for index in range(count))
        return
    # spawn, as the dataset generator does: a forked child of a process running torch
    # threads can inherit a held lock
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(render, range(count), chunksize=8)


def _sampled_at_size(
    seed: int, index: int, *, seconds: int, fps: int, size: int | None
) -> SampledStore:
    store = sampled_store(seed, index, seconds, fps=fps)
    if size is None:
        return store
    return replace(
        store,
        frames=np.stack([resize(frame, size) for frame in store.frames]),
        pictures=np.stack([resize(picture, size) for picture in store.pictures]),
    )
