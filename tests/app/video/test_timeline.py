import numpy as np

from app.video import Timeline


def frames(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(3, axis=3)


def ids(samples: np.ndarray) -> list[int]:
    return samples[:, 0, 0, 0].tolist()


def test_each_sample_is_the_last_frame_at_or_before_its_time() -> None:
    # source 4 fps (0, .25, .5, ...), memory 1 fps: samples at 0 s, 1 s, 2 s -> frames 0, 4, 8
    t = Timeline(fps=1.0)
    times = np.arange(10) * 250_000
    out = t.push(frames(10), times, frame_duration_us=250_000)
    # frame 8 (2.0 s) is final only once frame 9 proves nothing else falls at 2.0 s
    assert ids(out) == [0, 4, 8]
    assert ids(t.flush()) == []  # the session ends at 2.5 s: no sample at 3 s


def test_flush_covers_the_last_frame_duration() -> None:
    t = Timeline(fps=2.0)
    out = t.push(frames(3), np.array([0, 1_000_000, 2_000_000]), frame_duration_us=1_000_000)
    assert ids(out) == [0, 0, 1, 1]  # samples 0, .5, 1, 1.5 s
    assert ids(t.flush()) == [2, 2]  # 2 and 2.5 s: the last frame lasts until 3 s


def test_cutting_the_stream_anywhere_gives_the_same_samples() -> None:
    times = np.cumsum(np.random.default_rng(3).integers(30_000, 90_000, 50))
    whole = Timeline(fps=7.0)
    expected = ids(np.concatenate([whole.push(frames(50), times, 40_000), whole.flush()]))
    for cut in (1, 13, 25, 49):
        parts = Timeline(fps=7.0)
        got = [parts.push(frames(50)[:cut], times[:cut], 40_000)]
        got.append(parts.push(frames(50)[cut:], times[cut:], 40_000))
        got.append(parts.flush())
        assert ids(np.concatenate(got)) == expected


def test_frames_that_go_back_in_time_are_ignored() -> None:
    t = Timeline(fps=1.0)
    first = t.push(frames(3), np.array([0, 1_000_000, 2_000_000]), 1_000_000)
    replay = t.push(frames(3), np.array([0, 1_000_000, 2_000_000]), 1_000_000)
    assert ids(first) == [0, 1] and len(replay) == 0
    assert t.next_index == 2
