"""Evidence thumbnails kept by ingest: bounded on long sessions, and the same however the
samples arrive, commits cut them or a failed message is rolled back."""

from __future__ import annotations

import io
import itertools
import random

import numpy as np
import pytest
from PIL import Image

from app.ingest.thumbnails import ThumbnailKeeper, ThumbnailPolicy
from app.settings import Settings
from app.video.timeline import sample_time_us

FPS = 1.0


def noise(n: int, seed: int, size: tuple[int, int] = (144, 192)) -> np.ndarray:
    """Frames JPEG cannot shrink much: the worst case for the byte bound (N, H, W, 3)."""
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def committed(keeper: ThumbnailKeeper, store: dict[int, bytes]) -> None:
    """What the ingest commit does with a keeper's changes (storage.evidence, in memory)."""
    for t in keeper.dropped_times_us():
        store.pop(t, None)
    for thumb in keeper.added():
        store.setdefault(thumb.time_us, thumb.data)
    keeper.saved()


def test_a_twenty_minute_session_stays_within_both_bounds_and_covers_it_evenly() -> None:
    policy = ThumbnailPolicy.of(Settings(), FPS)  # the defaults: 1 a second, 160 px
    keeper = ThumbnailKeeper(policy, FPS)
    store: dict[int, bytes] = {}
    minutes = 20
    for first in range(0, minutes * 60, 30):  # 30 s chunks, a commit after each
        keeper.take(first, noise(30, first))
        committed(keeper, store)
        assert len(store) <= policy.max_frames
        assert sum(map(len, store.values())) <= policy.max_bytes
    times = sorted(store)
    step_us = times[1] - times[0]
    assert times[0] == 0 and all(b - a == step_us for a, b in itertools.pairwise(times))
    assert (minutes * 60 - 1) * 1_000_000 - times[-1] < step_us  # the end is covered too
    assert len(store) >= policy.max_frames // 4  # thinning halves, it does not empty
    first = Image.open(io.BytesIO(store[0]))
    assert first.format == "JPEG" and first.size == (160, 120)


def test_the_count_bound_thins_small_pictures_evenly() -> None:
    policy = ThumbnailPolicy(every=1, width=160, max_frames=10, max_bytes=10**9)
    keeper = ThumbnailKeeper(policy, FPS)
    keeper.take(0, np.zeros((100, 6, 8, 3), dtype=np.uint8))
    kept = [t.time_us for t in keeper.added()]
    assert kept == [sample_time_us(k, FPS) for k in range(0, 100, 16)]
    assert keeper.step == 16 and not keeper.dropped  # never committed: nothing to delete


def test_how_samples_arrive_and_commits_fall_changes_nothing() -> None:
    policy = ThumbnailPolicy(every=2, width=64, max_frames=12, max_bytes=10**9)
    frames = noise(200, 7, size=(48, 64))
    whole = ThumbnailKeeper(policy, FPS)
    whole.take(0, frames)
    expected = {t.time_us: t.data for t in whole.added()}

    rng = random.Random(3)
    store: dict[int, bytes] = {}
    keeper, k = ThumbnailKeeper(policy, FPS), 0
    while k < len(frames):
        n = rng.randint(1, 17)
        keeper.take(k, frames[k : k + n])
        k += n
        if rng.random() < 0.5:
            committed(keeper, store)
            if rng.random() < 0.5:  # a restart: the keeper is rebuilt from the commit
                sizes = {t: len(b) for t, b in store.items()}
                keeper = ThumbnailKeeper(policy, FPS, step=keeper.step, stored=sizes)
    committed(keeper, store)
    assert store == expected


def test_a_rolled_back_message_leaves_no_thumbnail() -> None:
    policy = ThumbnailPolicy(every=1, width=64, max_frames=4, max_bytes=10**9)
    keeper = ThumbnailKeeper(policy, FPS)
    keeper.take(0, noise(4, 1, size=(48, 64)))
    point = keeper.savepoint()
    before = (keeper.step, keeper.added(), keeper.total_bytes)
    keeper.take(4, noise(6, 2, size=(48, 64)))  # thins: the step doubles
    assert keeper.step > before[0]
    keeper.rollback(point)
    assert (keeper.step, keeper.added(), keeper.total_bytes) == before


@pytest.mark.parametrize(("evidence_fps", "every"), [(0.0, 0), (1.0, 2), (0.5, 4), (9.0, 1)])
def test_the_rate_counts_memory_samples(evidence_fps: float, every: int) -> None:
    policy = ThumbnailPolicy.of(Settings(evidence_fps=evidence_fps), 2.0)
    assert policy.every == every
    keeper = ThumbnailKeeper(policy, 2.0)
    keeper.take(0, np.zeros((8, 6, 8, 3), dtype=np.uint8))
    assert len(keeper.added()) == (8 // every if every else 0)
