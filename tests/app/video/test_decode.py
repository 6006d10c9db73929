"""Decoding chunks made by ffmpeg: size, rotation, sampling, memory and lost video."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from app.errors import VideoError
from app.video import Timeline, cut_chunks, decode_chunk

LIMITS = {"max_frame_pixels": 10_000_000, "max_seconds": 30.0}


def pattern(size: str, rate: int, seconds: float) -> tuple[str, ...]:
    """ffmpeg input: its moving test pattern (text, a clock, colour bars)."""
    return ("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}")


X264 = ("-c:v", "libx264", "-pix_fmt", "yuv420p")


def test_a_display_rotation_is_applied(rotated_mp4, ffmpeg_frames) -> None:
    path = rotated_mp4("phone.mp4", "320x240")
    decoded = decode_chunk(path.read_bytes(), "video/mp4", **LIMITS)
    upright = ffmpeg_frames(path, 240, 320)
    assert decoded.frames.shape == upright.shape == (20, 320, 240, 3)
    assert np.abs(decoded.frames.astype(int) - upright.astype(int)).mean() < 1
    assert decoded.loss is None


def test_frames_of_a_chunk_come_out_at_its_first_frames_size(ffmpeg_video, tmp_path) -> None:
    # a camera that switches resolution mid-chunk (parameter sets in band, as in MPEG-TS)
    big = ffmpeg_video("big.ts", *pattern("320x240", 10, 1), *X264)
    small = ffmpeg_video("small.ts", *pattern("160x120", 10, 1), *X264)
    (tmp_path / "list.txt").write_text(f"file '{big}'\nfile '{small}'\n")
    both = ffmpeg_video(
        "both.ts", "-f", "concat", "-safe", "0", "-i", str(tmp_path / "list.txt"), "-c", "copy"
    )
    with av.open(str(both)) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(320, 240), (160, 120)}
    decoded = decode_chunk(both.read_bytes(), "video/mp2t", **LIMITS)
    assert decoded.frames.shape == (20, 240, 320, 3) and decoded.loss is None
    halved = decode_chunk(both.read_bytes(), "video/mp2t", **LIMITS, max_side=160)
    assert halved.frames.shape == (20, 120, 160, 3)
    # the small frames are scaled up, not left black: the test pattern is bright
    assert halved.frames[15].mean() > 40


def test_big_frames_are_scaled_to_max_side_and_small_ones_left_alone(
    make_video: Callable[..., Path],
) -> None:
    path = make_video("wide.mp4", frames=10, size=(400, 200))
    (chunk,) = cut_chunks(path, chunk_seconds=5.0, max_bytes=900_000)
    whole = decode_chunk(chunk.data, chunk.content_type, **LIMITS)
    assert decode_chunk(chunk.data, chunk.content_type, **LIMITS, max_side=100).frames.shape == (
        10,
        50,
        100,
        3,
    )
    same = decode_chunk(chunk.data, chunk.content_type, **LIMITS, max_side=400)
    assert np.array_equal(same.frames, whole.frames)  # not over the limit: bit-identical


def test_sampling_keeps_only_what_the_timeline_emits(make_video: Callable[..., Path]) -> None:
    path = make_video("cam.mp4", frames=60, fps=10, options={"g": "10", "bframes": "2"})
    chunks = list(cut_chunks(path, chunk_seconds=2.0, max_bytes=900_000))
    assert len(chunks) == 3
    for fps in (1.0, 3.0, 7.0):
        outputs, kept = [], 0
        for select in (False, True):
            timeline, out = Timeline(fps), []
            for chunk in chunks:
                t0_us = round(chunk.t0 * 1_000_000)
                decoded = decode_chunk(
                    chunk.data,
                    chunk.content_type,
                    **LIMITS,
                    sample_fps=fps if select else None,
                    t0_us=t0_us,
                )
                kept += len(decoded.frames) if select else 0
                times = decoded.offsets_us + t0_us
                out.append(timeline.push(decoded.frames, times, decoded.frame_duration_us))
            out.append(timeline.flush())
            outputs.append(np.concatenate(out))
        assert np.array_equal(outputs[0], outputs[1]), fps
        assert kept < 60 * min(1.0, fps / 10 + 0.2)


def test_a_4k_chunk_is_decoded_holding_a_few_full_size_frames(ffmpeg_video) -> None:
    # 2 s of static 4K at 30 fps in 50 KB: every frame in RGB would take 1.5 GB
    path = ffmpeg_video(
        "4k.ts", "-f", "lavfi", "-i", "smptebars=size=3840x2160:rate=30", "-t", "2",
        *X264, "-preset", "ultrafast",
    )  # fmt: skip
    script = (
        "import sys\n"
        "from app.video import decode_chunk\n"
        "d = decode_chunk(open(sys.argv[1], 'rb').read(), 'video/mp2t', max_frame_pixels=10**8,"
        " max_seconds=30, max_side=256, sample_fps=1.0)\n"
        # the high-water mark of this process's memory (ru_maxrss would count the forked
        # test runner too)
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(*d.frames.shape, peak.split()[1])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(path)], check=True, capture_output=True, text=True
    )
    *shape, peak_kb = map(int, run.stdout.split())
    assert shape == [3, 144, 256, 3]  # samples at 0 and 1 s, and the last frame
    assert peak_kb < 600_000, f"peak RSS {peak_kb} KB"


def test_what_a_chunk_decodes_to_is_bounded(
    make_video: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_video("cam.mp4", frames=20, size=(96, 64))
    (chunk,) = cut_chunks(path, chunk_seconds=5.0, max_bytes=900_000)
    monkeypatch.setattr("app.video.decoder.MAX_DECODED_BYTES", 10 * 96 * 64 * 3)
    with pytest.raises(VideoError, match="decodes to more than"):
        decode_chunk(chunk.data, chunk.content_type, **LIMITS)
    assert len(decode_chunk(chunk.data, chunk.content_type, **LIMITS, sample_fps=1.0).frames) == 3


def ts_chunk(ffmpeg_video) -> bytes:
    return ffmpeg_video("cam.ts", *pattern("320x240", 10, 4), *X264, "-g", "40").read_bytes()


def test_a_whole_chunk_reports_no_loss(ffmpeg_video) -> None:
    decoded = decode_chunk(ts_chunk(ffmpeg_video), "video/mp2t", **LIMITS)
    assert len(decoded.frames) == 40 and decoded.loss is None


def inside_a_frame(data: bytes, at: int) -> int:
    """The first MPEG-TS packet boundary at or after ``at`` that falls inside a frame: the
    packet there continues a video PES (ffmpeg's video PID, no payload start)."""
    p = -(-at // 188) * 188
    while data[p + 1] & 0x40 or ((data[p + 1] & 0x1F) << 8 | data[p + 2]) != 0x100:
        p += 188
    return p


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (lambda d: d[: len(d) - 1000], "partial MPEG-TS packet"),  # not whole packets
        (lambda d: d[: inside_a_frame(d, len(d) - 188 * 4)], "damaged frame dropped"),
        (lambda d: d[: inside_a_frame(d, len(d) // 2)], "damaged frame dropped"),
        # a packet lost three quarters in: the demuxer sees the gap in its counter
        (lambda d: (p := inside_a_frame(d, len(d) * 3 // 4)) and d[:p] + d[p + 188 :], "corrupt"),
    ],
)
def test_a_truncated_chunk_keeps_its_good_frames_and_says_what_was_lost(
    ffmpeg_video, cut, reason: str
) -> None:
    data = ts_chunk(ffmpeg_video)
    whole = decode_chunk(data, "video/mp2t", **LIMITS)
    decoded = decode_chunk(cut(data), "video/mp2t", **LIMITS)
    assert 0 < len(decoded.frames) <= len(whole.frames)
    assert decoded.loss is not None and reason in decoded.loss and decoded.loss.endswith(".")
    # what was kept is the real video, frame for frame (after a lost packet mid-chunk, the
    # frames that refer to it are concealed: only those before it are the same)
    at = {t: i for i, t in enumerate(whole.offsets_us.tolist())}
    for image, t in zip(decoded.frames, decoded.offsets_us.tolist(), strict=True):
        if reason != "corrupt" or t < 2_000_000:
            assert np.array_equal(image, whole.frames[at[t]]), t


def test_a_chunk_with_nothing_decodable_is_still_an_error(ffmpeg_video) -> None:
    data = ts_chunk(ffmpeg_video)
    with pytest.raises(VideoError, match="no decodable frame"):
        decode_chunk(data[: 188 * 3], "video/mp2t", **LIMITS)
