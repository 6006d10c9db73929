import numpy as np

from app.video import Timeline, frames_needed


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


def numbered(n: int, first: int = 0) -> np.ndarray:
    """Frames (n, 1, 2, 3) whose first two pixels spell their number (up to 65535)."""
    ids = np.arange(first, first + n)
    out = np.zeros((n, 1, 2, 3), np.uint8)
    out[:, 0, 0, 0], out[:, 0, 1, 0] = ids // 256, ids % 256
    return out


def numbers(samples: np.ndarray) -> list[int]:
    return (samples[:, 0, 0, 0].astype(int) * 256 + samples[:, 0, 1, 0]).tolist()


def run_chunks(fps: float, chunks: list[tuple[int, np.ndarray]], *, select: bool) -> list[int]:
    timeline, out, first = Timeline(fps), [], 0
    for t0, offsets in chunks:
        images, times = numbered(len(offsets), first), t0 + offsets
        first += len(offsets)
        if select:
            keep = frames_needed(times, fps)
            assert keep[0] and keep[-1]
            images, times = images[keep], times[keep]
        out.append(timeline.push(images, times, 33_333))
    out.append(timeline.flush())
    return numbers(np.concatenate(out))


def random_chunks(rng: np.random.Generator, fps: float) -> list[tuple[int, np.ndarray]]:
    chunks, t0 = [], int(rng.integers(0, 3_000_000))
    for _ in range(int(rng.integers(1, 6))):
        n = int(rng.integers(1, 40))
        if rng.random() < 0.4:  # frames within two microseconds of the sample times
            k0 = round(t0 * fps / 1e6) + int(rng.integers(0, 3))
            near = [round((k0 + k) * 1e6 / fps) for k in range(n)] + rng.integers(-2, 3, n)
            times = np.unique(np.maximum(near, 0))
            t0, offsets = int(times[0]), times - times[0]
        else:
            offsets = np.concatenate([[0], np.cumsum(rng.integers(1, 400_000, n - 1))])
        chunks.append((t0, offsets.astype(np.int64)))
        # the next chunk: usually after this one, sometimes overlapping it (a re-sent chunk)
        t0 += int(offsets[-1]) + int(rng.integers(-600_000, 1_500_000))
        t0 = max(t0, 0)
    return chunks


def test_selecting_frames_never_changes_what_the_timeline_emits() -> None:
    rng = np.random.default_rng(12)
    kept = total = 0
    for trial in range(600):
        fps = [0.5, 1.0, 2.0, 7.0, 29.97, 30.0, 1000 / 3][trial % 7]
        chunks = random_chunks(rng, fps)
        expected = run_chunks(fps, chunks, select=False)
        assert run_chunks(fps, chunks, select=True) == expected, (fps, chunks)
        kept += sum(int(frames_needed(t0 + o, fps).sum()) for t0, o in chunks)
        total += sum(len(o) for _, o in chunks)
    assert kept < total  # and it does leave frames out
