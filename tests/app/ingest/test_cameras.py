"""Several cameras in one session: each keeps its own timeline, and step k of the session is
their samples of step k side by side."""

from __future__ import annotations

import numpy as np
import pytest

from app.ingest.cameras import CameraSet, camera_state, cameras_from_state
from app.video import Timeline

FPS = 2.0
STEP_US = 500_000


def frames(n: int, seed: int, size: tuple[int, int] = (4, 6)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def times(n: int, start_s: float = 0.0, every_us: int = 250_000) -> np.ndarray:
    return round(start_s * 1e6) + every_us * np.arange(n, dtype=np.int64)


def test_one_camera_is_its_own_timeline_bit_for_bit() -> None:
    cameras, reference = CameraSet(FPS, skew_steps=4), Timeline(FPS)
    video, at = frames(24, 0), times(24)
    camera = cameras.add("front")
    got, want = [], []
    for part in (slice(0, 5), slice(5, 17), slice(17, 24)):
        cameras.push(camera, video[part], at[part], 250_000)
        got.append(cameras.combine())
        want.append(reference.push(video[part], at[part], 250_000))
    cameras.end(camera, {})
    got.append(cameras.combine(final=True))
    want.append(reference.flush())
    assert np.array_equal(np.concatenate(got), np.concatenate(want))
    assert cameras.next_step == reference.next_index == 12


def test_two_cameras_make_one_frame_per_step_side_by_side_and_wait_for_each_other() -> None:
    cameras = CameraSet(FPS, skew_steps=100)
    front, basket = cameras.add("front"), cameras.add("basket")
    a, b = frames(8, 1), frames(8, 2)
    # the front camera runs ahead: nothing is combined until the basket camera has the step
    cameras.push(front, a, times(8), 250_000)
    assert len(cameras.combine()) == 0
    cameras.push(basket, b[:4], times(4), 250_000)
    early = cameras.combine()
    cameras.push(basket, b[4:], times(4, start_s=1.0), 250_000)
    cameras.end(front, {})
    cameras.end(basket, {})
    combined = np.concatenate([early, cameras.combine(final=True)])
    # a frame every 250 ms sampled at 2 fps: step k shows frame 2k of each camera
    assert combined.shape == (4, 4, 12, 3) and len(early) == 2
    for k in range(4):
        assert np.array_equal(combined[k, :, :6], a[2 * k])
        assert np.array_equal(combined[k, :, 6:], b[2 * k])


def test_a_camera_far_behind_is_not_waited_for_and_its_late_video_is_reported() -> None:
    cameras = CameraSet(FPS, skew_steps=3)
    front, basket = cameras.add("front"), cameras.add("basket")
    a = frames(20, 3)
    cameras.push(front, a, times(20), 250_000)  # 5 s of front video, nothing of the basket
    out = cameras.combine()
    # the front camera has 10 steps (0-4.5 s); those more than 3 behind it are combined
    # without the basket: its slot is black, it never sent a frame
    assert len(out) == 10 - 3 and not out[:, :, 6:].any()
    assert np.array_equal(out[:, :, :6], a[0 : 2 * len(out) : 2])
    late = cameras.push(basket, frames(8, 4), times(8), 250_000)  # its first 2 s, too late
    assert late == (0.0, 2.0) and not basket.waiting  # nothing of it waits to be combined
    b = frames(6, 5)
    assert cameras.push(basket, b, times(6, start_s=len(out) * STEP_US / 1e6), 250_000) is None
    caught_up = cameras.combine()  # the basket's video from the present on is used
    assert len(caught_up) == 3 and np.array_equal(caught_up[:, :, 6:], b[0::2])


def test_a_camera_that_joins_late_starts_at_the_session_present_and_holds_its_last_frame() -> None:
    cameras = CameraSet(FPS, skew_steps=100)
    front = cameras.add("front")
    a = frames(12, 5)
    cameras.push(front, a[:8], times(8), 250_000)
    alone = cameras.combine()  # the front camera alone: its own frames, one camera wide
    assert alone.shape[1:] == (4, 6, 3) and len(alone) == 4  # 0-1.5 s
    basket = cameras.add("basket")
    b = frames(2, 6)
    assert cameras.push(basket, b, times(2, start_s=2.0), 250_000) is None
    cameras.push(front, a[8:], times(4, start_s=2.0), 250_000)
    cameras.end(basket, {})
    two = cameras.combine()
    cameras.end(front, {})
    two = np.concatenate([two, cameras.combine(final=True)])
    assert two.shape[1:] == (4, 12, 3)
    assert len(two) == 2  # steps 4 and 5 (2.0 and 2.5 s)
    assert np.array_equal(two[0, :, 6:], b[0])
    assert np.array_equal(two[1, :, 6:], b[1])  # after it ended: its last frame, held
    assert np.array_equal(two[:, :, :6], a[8::2])


def test_a_commit_in_the_middle_changes_nothing() -> None:
    a, b = frames(30, 7), frames(30, 8, size=(8, 12))  # the basket camera is twice the size

    def run(stop_after: int | None) -> np.ndarray:
        cameras = CameraSet(FPS, skew_steps=5)
        tracks = {"front": cameras.add("front"), "basket": cameras.add("basket")}
        out = []
        stored: dict[str, np.ndarray] = {}  # what the database holds after each commit
        written.clear()
        held.clear()
        pushes = [("front", 0, 10), ("basket", 0, 4), ("front", 10, 30), ("basket", 4, 30)]
        for i, (name, lo, hi) in enumerate(pushes):
            cameras.push(
                tracks[name], (a if name == "front" else b)[lo:hi], times(30)[lo:hi], 250_000
            )
            out.append(cameras.combine())
            # a commit after every message; a restart from it after message ``stop_after``
            state = camera_state(cameras)
            stored = {n: a for n, a in stored.items() if n in state.kept} | state.arrays
            cameras.saved()
            written.append(sum(len(a) for n, a in state.arrays.items() if "waiting" in n))
            held.append(sum(len(t.waiting) for t in cameras.tracks))
            if i == stop_after:
                first = cameras.tracks[0]
                first.id = None  # as the snapshot's top-level fields give it back
                cameras = cameras_from_state(state.info, stored, first, FPS, 5)
                tracks = {str(t.id): t for t in cameras.tracks}
        for track in cameras.tracks:
            cameras.end(track, {})
        out.append(cameras.combine(final=True))
        return np.concatenate([o for o in out if len(o)])

    written: list[int] = []  # waiting samples each commit wrote
    held: list[int] = []  # and how many were waiting then
    straight = run(None)
    assert straight.shape == (15, 4, 12, 3)
    # the front camera runs ahead: steps 0-4 wait for the basket, which then releases 0-1;
    # steps 2-4 still wait at the second commit, which writes none of them again; its next
    # message (steps 5-14) combines up to 9 without the basket (5 steps of skew), 10-14 wait
    assert held == [5, 3, 5, 0]
    assert written == [5, 0, 5, 0]
    for stop in range(4):
        assert np.array_equal(run(stop), straight), stop


def test_a_failed_message_is_undone_camera_and_all() -> None:
    cameras = CameraSet(FPS, skew_steps=100)
    front = cameras.add("front")
    cameras.push(front, frames(4, 9), times(4), 250_000)
    point = cameras.savepoint()
    before = (front.timeline.next_index, front.timeline.held_time_us, cameras.next_step)
    cameras.push(front, frames(4, 10), times(4, start_s=1.0), 250_000)
    cameras.add("basket")
    cameras.end(front, {"x": 1})
    cameras.rollback(point)
    assert [t.id for t in cameras.tracks] == ["front"] and not front.ended
    assert (front.timeline.next_index, front.timeline.held_time_us, cameras.next_step) == before


@pytest.mark.parametrize("count,shape", [(3, (8, 12, 3)), (4, (8, 12, 3))])
def test_three_or_four_cameras_are_two_by_two(count: int, shape: tuple[int, ...]) -> None:
    cameras = CameraSet(FPS, skew_steps=100)
    tracks = [cameras.add(f"cam-{i}") for i in range(count)]
    videos = [frames(4, 20 + i) for i in range(count)]
    for track, video in zip(tracks, videos, strict=True):
        cameras.push(track, video, times(4), 250_000)
        cameras.end(track, {})
    out = cameras.combine(final=True)
    assert out.shape[1:] == shape
    for i, video in enumerate(videos):
        r, c = divmod(i, 2)
        assert np.array_equal(out[0, r * 4 : (r + 1) * 4, c * 6 : (c + 1) * 6], video[0])
    if count == 3:
        assert not out[:, 4:, 6:].any()  # the fourth slot stays black


def test_declared_cameras_are_waited_for_before_they_send_in_their_declared_order() -> None:
    cameras = CameraSet(FPS, skew_steps=100)
    basket = cameras.add("basket")  # its session_start came first, declaring both
    cameras.declare(["front", "basket"])
    front = cameras.get("front")
    assert front is not None and [t.id for t in cameras.tracks] == ["basket", "front"]
    a, b = frames(8, 30), frames(8, 31)
    cameras.push(basket, b, times(8), 250_000)
    assert len(cameras.combine()) == 0  # the front camera has sent nothing, but it is awaited
    cameras.push(front, a, times(8), 250_000)
    out = cameras.combine()
    assert len(out) == 4 and np.array_equal(out[:, :, :6], b[::2])
    cameras.declare(["c1", "c2", "c3"])  # never past four cameras
    assert [t.id for t in cameras.tracks] == ["basket", "front", "c1", "c2"]


def test_a_snapshot_holding_waiting_samples_whole_still_restores() -> None:
    """Before samples were stored once each, a commit stored every camera's waiting samples
    whole (``waiting``, ``waiting.1``): such a snapshot restores to the same frames, and
    its next commit stores them the new way, the old arrays no longer kept."""
    a, b = frames(30, 7), frames(30, 8)

    def run(old_format: bool) -> np.ndarray:
        cameras = CameraSet(FPS, skew_steps=5)
        front, basket = cameras.add("front"), cameras.add("basket")
        cameras.push(basket, b[:4], times(30)[:4], 250_000)
        cameras.push(front, a[:10], times(30)[:10], 250_000)
        out = [cameras.combine()]
        state = camera_state(cameras)
        arrays = dict(state.arrays)
        if old_format:
            arrays = {n: x for n, x in arrays.items() if not n.startswith("waiting.")}
            arrays["waiting"] = np.stack(front.waiting)
            if basket.waiting:
                arrays["waiting.1"] = np.stack(basket.waiting)
        front.id = None
        cameras = cameras_from_state(state.info, arrays, front, FPS, 5)
        if old_format:
            again = camera_state(cameras)
            assert not {"waiting", "waiting.1"} & set(again.kept)
            assert sum(len(x) for n, x in again.arrays.items() if n.startswith("waiting.")) == 3
        front, basket = cameras.tracks
        cameras.push(basket, b[4:], times(30)[4:], 250_000)
        cameras.push(front, a[10:], times(30)[10:], 250_000)
        out.append(cameras.combine(final=True))
        return np.concatenate([o for o in out if len(o)])

    assert np.array_equal(run(True), run(False))
