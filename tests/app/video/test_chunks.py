"""Cutting files into chunks and decoding them again, on real encoded video."""

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from app.errors import VideoError
from app.video import Timeline, cut_chunks, decode_chunk

LIMITS = {"max_frame_pixels": 10_000_000, "max_seconds": 30.0}


def chunk_samples(path: Path, fps: float, **cut) -> tuple[np.ndarray, list]:
    chunks = list(cut_chunks(path, **cut))
    timeline = Timeline(fps)
    out = []
    for chunk in chunks:
        decoded = decode_chunk(chunk.data, chunk.content_type, **LIMITS)
        assert decoded.loss is None, decoded.loss  # every chunk decodes alone, whole
        times = decoded.offsets_us + round(chunk.t0 * 1_000_000)
        out.append(timeline.push(decoded.frames, times, decoded.frame_duration_us))
    out.append(timeline.flush())
    return np.concatenate(out), chunks


@pytest.mark.parametrize("bframes", ["0", "3"])
def test_h264_is_cut_at_key_frames_without_changing_a_pixel(
    make_video: Callable[..., Path], frames_at_fps, bframes: str
) -> None:
    path = make_video(
        "cam.mp4",
        frames=60,
        options={"g": "10", "keyint_min": "10", "sc_threshold": "0", "bframes": bframes},
    )
    got, chunks = chunk_samples(path, 3.0, chunk_seconds=2.0, max_bytes=900_000)
    assert [c.t0 for c in chunks] == [0.0, 2.0, 4.0]
    assert not any(c.reencoded for c in chunks)
    assert np.array_equal(got, frames_at_fps(path, 3.0))


@pytest.mark.parametrize(
    ("name", "codec", "options", "pix_fmt"),
    [
        ("cam.webm", "libvpx-vp9", {}, "yuv420p"),
        ("cam.mkv", "mjpeg", {}, "yuvj420p"),
        ("cam-hevc.mkv", "libx265", {"x265-params": "log-level=error"}, "yuv420p"),
    ],
)
def test_other_codecs_are_reencoded_as_h264(
    make_video, frames_at_fps, name, codec, options, pix_fmt
) -> None:
    path = make_video(name, codec, frames=30, options=options, pix_fmt=pix_fmt)
    got, chunks = chunk_samples(path, 2.0, chunk_seconds=1.0, max_bytes=900_000)
    assert all(c.reencoded for c in chunks) and len(chunks) == 3
    for chunk in chunks:
        with av.open(__import__("io").BytesIO(chunk.data), format="mpegts") as ts:
            assert ts.streams.video[0].codec_context.name == "h264"
    reference = frames_at_fps(path, 2.0)
    assert got.shape == reference.shape
    # lossy, but the same pictures: mean error of a few grey levels
    assert np.abs(got.astype(int) - reference.astype(int)).mean() < 8


def test_every_chunk_fits_the_byte_limit(make_video: Callable[..., Path], frames_at_fps) -> None:
    path = make_video("busy.mp4", frames=40, noise=120, options={"g": "40"})
    got, chunks = chunk_samples(path, 2.0, chunk_seconds=4.0, max_bytes=12_000)
    assert len(chunks) > 2 and all(len(c.data) <= 12_000 for c in chunks)
    assert [c.t0 for c in chunks] == sorted(c.t0 for c in chunks)
    assert got.shape == frames_at_fps(path, 2.0).shape


def test_not_a_video_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError, match="cannot open video"):
        list(cut_chunks(junk, chunk_seconds=2.0, max_bytes=900_000))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not video" * 50, "no decodable frame|not readable|holds no video"),
        (b"", "not readable|holds no video|no decodable frame"),
    ],
)
def test_undecodable_chunks_are_errors_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(VideoError, match=reason):
        decode_chunk(data, "video/mp2t", **LIMITS)


def test_a_truncated_chunk_is_an_error_or_decodes_what_it_holds(
    make_video: Callable[..., Path],
) -> None:
    path = make_video("cam.mp4", frames=20, options={"g": "20"})
    (chunk,) = cut_chunks(path, chunk_seconds=5.0, max_bytes=900_000)
    full = decode_chunk(chunk.data, chunk.content_type, **LIMITS)
    try:
        cut = decode_chunk(chunk.data[: len(chunk.data) // 3], chunk.content_type, **LIMITS)
    except VideoError as error:
        assert str(error).endswith(".")
    else:  # what a truncated stream still yields is a prefix of the real frames
        assert 0 < len(cut.frames) < len(full.frames)


def test_limits_on_frame_size_and_duration(make_video: Callable[..., Path]) -> None:
    path = make_video("cam.mp4", frames=40, options={"g": "40"})
    (chunk,) = cut_chunks(path, chunk_seconds=10.0, max_bytes=900_000)
    with pytest.raises(VideoError, match="over the limit of 1000 pixels"):
        decode_chunk(chunk.data, chunk.content_type, max_frame_pixels=1000, max_seconds=30)
    # decoding stops at the first frame past the limit: a long chunk costs no more than that
    with pytest.raises(VideoError, match=r"spans at least 2\.1 s, over the 2 s limit"):
        decode_chunk(chunk.data, chunk.content_type, max_frame_pixels=10**7, max_seconds=2)
    with pytest.raises(VideoError, match="not a video format"):
        decode_chunk(chunk.data, "video/avi", **LIMITS)


def x264(size: str, rate: int, seconds: float, *options: str) -> tuple[str, ...]:
    """ffmpeg arguments: its moving test pattern encoded by libx264 with ``options``."""
    pattern = f"testsrc2=size={size}:rate={rate}:duration={seconds}"
    return ("-f", "lavfi", "-i", pattern, "-c:v", "libx264", "-pix_fmt", "yuv420p", *options)


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_an_open_gop_is_cut_only_where_a_chunk_decodes_alone(ffmpeg_video, frames_at_fps) -> None:
    # x264's open GOPs: one IDR, then recovery-point I frames whose leading B frames refer
    # to the GOP before; a chunk cut at one of those does not decode
    options = ("-bf", "3", "-g", "20", "-x264-params", "open-gop=1")
    path = ffmpeg_video("open-gop.mp4", *x264("320x240", 10, 12, *options))
    got, chunks = chunk_samples(path, 2.0, chunk_seconds=2.0, max_bytes=900_000)
    assert len(chunks) == 6 and [c.t0 for c in chunks] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert mean_error(got, frames_at_fps(path, 2.0)) < 4  # re-encoded: lossy, the same pictures


def test_h264_with_parameter_sets_only_at_the_start_is_cut_self_contained(
    ffmpeg_video, frames_at_fps, tmp_path: Path
) -> None:
    # a camera's Annex B stream that sends SPS/PPS once: every chunk must carry them
    mp4 = ffmpeg_video("cam.mp4", *x264("320x240", 10, 6, "-g", "10", "-bf", "0"))
    annexb = "h264_mp4toannexb,filter_units="
    body = ffmpeg_video(
        "body.h264", "-i", str(mp4), "-c", "copy", "-bsf:v", annexb + "remove_types=7|8"
    )
    head = ffmpeg_video(
        "head.h264",
        "-i",
        str(mp4),
        "-c",
        "copy",
        "-bsf:v",
        annexb + "pass_types=7|8",
        "-frames:v",
        "1",
    )
    (tmp_path / "once.h264").write_bytes(head.read_bytes() + body.read_bytes())
    path = ffmpeg_video(
        "once.ts", "-framerate", "10", "-i", str(tmp_path / "once.h264"), "-c", "copy"
    )
    got, chunks = chunk_samples(path, 5.0, chunk_seconds=2.0, max_bytes=900_000)
    assert len(chunks) == 3 and not any(c.reencoded for c in chunks)
    assert np.array_equal(got, frames_at_fps(path, 5.0))


def test_a_rotated_video_is_published_upright(rotated_mp4, ffmpeg_frames) -> None:
    # MPEG-TS has no display matrix: the chunks are re-encoded with the pixels turned
    path = rotated_mp4("phone.mp4", "320x240")
    got, chunks = chunk_samples(path, 10.0, chunk_seconds=1.0, max_bytes=900_000)
    assert len(chunks) == 2 and all(c.reencoded for c in chunks)
    assert mean_error(got, ffmpeg_frames(path, 240, 320)) < 4


def test_reencoded_chunks_are_at_most_max_height_rows(make_video: Callable[..., Path]) -> None:
    path = make_video("cam.mkv", "mjpeg", frames=10, size=(128, 96), pix_fmt="yuvj420p")
    (chunk,) = cut_chunks(path, chunk_seconds=5.0, max_bytes=900_000, max_height=48)
    decoded = decode_chunk(chunk.data, chunk.content_type, **LIMITS)
    assert decoded.frames.shape == (10, 48, 64, 3) and chunk.reencoded
    (chunk,) = cut_chunks(path, chunk_seconds=5.0, max_bytes=900_000)  # 480 rows by default
    assert decode_chunk(chunk.data, chunk.content_type, **LIMITS).frames.shape == (10, 96, 128, 3)


def test_a_long_gop_is_reencoded_in_chunk_length_pieces(ffmpeg_video, frames_at_fps) -> None:
    # one IDR for the whole file: waiting for the next would make one 10 s chunk
    path = ffmpeg_video("long-gop.mp4", *x264("320x240", 10, 10, "-g", "1000"))
    got, chunks = chunk_samples(path, 2.0, chunk_seconds=2.0, max_bytes=900_000)
    assert [c.t0 for c in chunks] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert all(c.reencoded for c in chunks)
    assert mean_error(got, frames_at_fps(path, 2.0)) < 4
