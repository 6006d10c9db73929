"""Decoding camera streams on CPU threads against the GPU's video decoder (NVDEC, through
PyAV's hardware acceleration): decoded frames/s of a 480p H.264 stream as more streams
decode at once, JSON and a plot.

    python -m app.bench.decode --out OUT [--seconds 16] [--streams 1 2 4 8 16]

Each stream decodes the whole file and converts every frame to RGB arrays in host memory,
as ingest needs them. Decoding is the capacity plan's first bound on a GPU host after the
database (docs/CAPACITY.md); this says whether the GPU's decoder lifts it. Where PyAV
cannot open the CUDA decoder (no GPU, or an FFmpeg without it) the JSON says why in one
sentence instead of a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from app.bench.capacity import CAMERA, CAMERA_FPS, camera_video
from app.bench.machine import describe_machine
from app.video.decoder import frame_to_rgb


def decode_file(path: Path, hwaccel: str | None) -> tuple[int, bool]:
    """Decode ``path`` to RGB arrays: (frames, whether the hardware decoder did it)."""
    import av
    from av.codec.hwaccel import HWAccel

    accel = HWAccel(device_type=hwaccel, allow_software_fallback=False) if hwaccel else None
    with av.open(str(path), hwaccel=accel) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"  # one thread a stream, as ingest decodes (app/video/decoder.py)
        frames = 0
        for frame in container.decode(stream):
            frame_to_rgb(frame)  # (H, W, 3) in host memory, as ingest converts and keeps it
            frames += 1
        return frames, stream.codec_context.is_hwaccel


def measure(path: Path, streams: int, hwaccel: str | None) -> dict[str, Any]:
    """``streams`` decodes of ``path`` at once, each on its own thread (PyAV lets go of the
    GIL while FFmpeg decodes)."""
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=streams) as pool:
        results = list(pool.map(lambda _: decode_file(path, hwaccel), range(streams)))
    seconds = time.perf_counter() - began
    frames = sum(n for n, _ in results)
    return {
        "streams": streams,
        "frames": frames,
        "seconds": round(seconds, 3),
        "frames_per_second": round(frames / seconds, 1),
        "hardware_decoded": all(hw for _, hw in results),
    }


def cuda_unavailable() -> str | None:
    """Why the CUDA decoder cannot be used here, in a sentence; None when it can."""
    import torch
    from av.codec.hwaccel import hwdevices_available

    if "cuda" not in hwdevices_available():
        return "PyAV's FFmpeg was built without the CUDA hardware decoder."
    if not torch.cuda.is_available():
        return "No CUDA device is visible (torch.cuda.is_available() is False)."
    return None


def run(out: Path, *, seconds: float, streams: list[int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        video = camera_video(Path(tmp) / "camera.mp4", seconds=seconds)
        decode_file(video, None)  # warm-up: libraries loaded, file in the page cache
        results: dict[str, Any] = {
            "machine": describe_machine(),
            "camera": f"{CAMERA[0]}x{CAMERA[1]} H.264 at {CAMERA_FPS:g} fps, {seconds:g} s",
            "cpu": [measure(video, n, None) for n in streams],
        }
        reason = cuda_unavailable()
        if reason is None:
            try:
                results["cuda"] = [measure(video, n, "cuda") for n in streams]
            except Exception as exc:  # an FFmpeg or driver refusal is a result, said plainly
                reason = f"PyAV could not decode with CUDA ({type(exc).__name__}: {exc})."
        if reason is not None:
            results["cuda_unavailable"] = reason
    out.mkdir(parents=True, exist_ok=True)
    (out / "decode.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "decode.png")
    return results


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key, label in (("cpu", "CPU threads"), ("cuda", "GPU decoder (NVDEC)")):
        rows = results.get(key) or []
        if rows:
            ax.plot(
                [r["streams"] for r in rows],
                [r["frames_per_second"] for r in rows],
                "o-",
                label=label,
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("streams decoded at once")
    ax.set_ylabel("decoded frames per second (RGB in host memory)")
    title = f"Decoding {results['camera']}"
    if "cuda_unavailable" in results:
        title += "\n(no GPU decoder: " + results["cuda_unavailable"].rstrip(".") + ")"
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=16.0)
    default_streams = [n for n in (1, 2, 4, 8, 16) if n <= max(2, os.cpu_count() or 1)]
    parser.add_argument("--streams", type=int, nargs="+", default=default_streams)
    args = parser.parse_args(argv)
    results = run(args.out, seconds=args.seconds, streams=args.streams)
    results["command"] = "python -m app.bench.decode " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    (args.out / "decode.json").write_text(json.dumps(results, indent=2) + "\n")
    for key in ("cpu", "cuda"):
        for row in results.get(key) or []:
            print(json.dumps({"decoder": key} | row))
    if "cuda_unavailable" in results:
        print(results["cuda_unavailable"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
