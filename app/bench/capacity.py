"""Capacity: a model of ingest throughput calibrated on small runs and checked on large
ones, and the plan it gives for the ``paper`` preset on one H200 and on many.

CPU part (tiny preset, this machine): instrumented runs of the production engine at a few
sessions (``CALIBRATION``) give main-thread unit costs (``capacity_model.UnitCosts``);
the model predicts the ingest benchmark at ``VALIDATION`` sessions, which are then run and
measured in the same process. Nothing measured at a validation count enters the model.

Device part: the ``paper`` preset's bytes per memory are exact; its backbone and sampler
rates are measured when a CUDA device is present and otherwise estimated from their FLOPs
and an assumed utilization (labelled ``estimate`` in the JSON); decode CPU per frame is
measured here on a 480p H.264 camera stream.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.bench import capacity_model as cm
from app.bench import ingest
from app.bench.machine import describe_machine
from app.model_runtime import DEVICE_BACKBONE_DEFAULTS, load_model, resolve_device
from app.settings import Settings
from model import LongVMNet, Memory, ModelConfig
from model.backbone_run import BackboneRun

CALIBRATION = (1, 2, 4, 8, 16)
VALIDATION = (64, 256, 1024)
QUICK_CALIBRATION = (1, 2)
QUICK_VALIDATION = (4,)
#: the ingest benchmark's own commit interval (``app.bench.ingest.measure``)
BENCH_COMMIT_INTERVAL_S = 5.0
FREQUENT_COMMIT_S = 0.001  # the commit calibration run: a commit after (almost) every loop

# ----------------------------------------------------------------- assumptions (labelled)
#: H200 SXM peak dense throughput, NVIDIA's data sheet: FP32 on CUDA cores, BF16 on tensor
#: cores. Ingest runs the backbone in bf16 on CUDA (``CARTMEM_BACKBONE_AUTOCAST``), the
#: sampler in float32 (TF32 off for matmul).
H200_PEAK_FLOPS = {"fp32": 67e12, "bf16": 989e12}
#: an assumed share of that peak for batches of 120 frames (a paper clip); the GPU script
#: replaces the estimate with a measurement
ASSUMED_UTILIZATION = 0.4
#: usable device memory of the lent H200 (the device tool's description: about 139 GiB)
H200_MEMORY_BYTES = 139 * cm.GIB
#: weights, CUDA context and the workspace of the backbone and sampler calls (estimate;
#: the GPU script measures the peak)
ASSUMED_RESERVED_BYTES = 16 * cm.GIB
#: what one PostgreSQL primary sustains of large bytea rows, WAL included (assumption:
#: measure on the target database)
ASSUMED_DATABASE_BYTES_PER_S = 200e6
#: the machine an H200 comes in (the device tool's description)
H200_HOST_CORES = 16
#: a store camera as published (CARTMEM_PUBLISH_MAX_HEIGHT = 480, 16:9) and its frame rate
CAMERA = (854, 480)
CAMERA_FPS = 15.0


#: the device rates a run without a CUDA device estimates instead of measuring
_ESTIMATED_WITHOUT_GPU = ["reserved_bytes_estimate", "backbone_frames_per_s", "sampler_clips_per_s"]


@dataclass(frozen=True)
class CapacityResult:
    machine: dict[str, Any]
    preset: str
    device: str
    torch_threads: int
    calibration_sessions: tuple[int, ...]
    validation_sessions: tuple[int, ...]
    units: dict[str, float]
    shape: dict[str, int]
    sizes: dict[str, float]
    calibration: list[dict[str, Any]]  # measured runs and what the model says of them
    calibration_runs: list[dict[str, Any]]  # what the fit read: each run with its timings
    validation: list[dict[str, Any]]  # predicted, then measured, with the error
    max_abs_error_pct: float | None
    paper_plan: dict[str, Any]


def run(
    settings: Settings,
    *,
    quick: bool,
    log: Callable[[str], None] = lambda _line: None,
    validate: bool = True,
    calibration: tuple[int, ...] | None = None,
    validation: tuple[int, ...] | None = None,
) -> CapacityResult:
    """Calibrate, predict, measure the validation counts, and plan the paper preset."""
    calibrate_at = calibration or (QUICK_CALIBRATION if quick else CALIBRATION)
    validate_at = (validation or (QUICK_VALIDATION if quick else VALIDATION)) if validate else ()
    model = load_model(settings)
    cfg = model.net.cfg
    with tempfile.TemporaryDirectory(prefix="cartmem-capacity-") as tmp:
        workdir = Path(tmp)
        video = ingest.benchmark_video(workdir, quick=quick)
        runs = []
        for n in calibrate_at:
            log(f"[capacity] calibration run, {n} sessions")
            runs.append(ingest.measure(settings, video, n, workdir, timed=True))
        shape = _shape(runs[0], cfg, settings)
        sizes = cm.Bytes(
            memory=Memory.nbytes_per_session(cfg),
            frame=_frame_bytes(video, cfg.image_size),
            thumbnail=sum(r["timings"]["thumbnail_bytes"] for r in runs)
            / sum(r["memory_frames"] for r in runs),
        )
        # commits in the runs above store similar sessions alike, so their snapshots and
        # bytes rise together and a fit cannot tell the two costs apart; one more run that
        # commits after nearly every loop stores many small frames-only snapshots as well
        n = calibrate_at[-1]
        log(f"[capacity] commit calibration run, {n} sessions, a commit every loop")
        frequent = ingest.measure(
            settings, video, n, workdir, timed=True, commit_interval_s=FREQUENT_COMMIT_S
        )
        units = fit(runs, commit_runs=[*runs, frequent])
        cores = os.cpu_count() or 1

        def predicted(n: int) -> cm.Prediction:
            return cm.predict(
                units,
                shape,
                sizes,
                n,
                loop_records=settings.ingest_batch_records,
                commit_interval_s=BENCH_COMMIT_INTERVAL_S,
                cores=cores,
            )

        calibrated = [_compare(predicted(r["sessions"]), r) for r in runs]
        checked = []
        for n in validate_at:
            guess = predicted(n)  # written down before the run
            log(
                f"[capacity] validation run, {n} sessions "
                f"(predicted {guess.decoded_frames_per_second:.1f} decoded frames/s)"
            )
            checked.append(_compare(guess, ingest.measure(settings, video, n, workdir, timed=True)))
        log("[capacity] the paper preset's plan")
        paper = paper_plan(settings, units, sizes, workdir, measured_preset=cfg.name)
    errors = [abs(row["error_pct"]) for row in checked]
    return CapacityResult(
        machine=describe_machine(),
        preset=cfg.name,
        device=model.device,
        torch_threads=torch.get_num_threads(),
        calibration_sessions=tuple(calibrate_at),
        validation_sessions=tuple(validate_at),
        units={k: float(f"{v:.6g}") for k, v in dataclasses.asdict(units).items()},
        shape=dataclasses.asdict(shape),
        sizes=dataclasses.asdict(sizes),
        calibration=calibrated,
        calibration_runs=[*runs, frequent],
        validation=checked,
        max_abs_error_pct=max(errors) if errors else None,
        paper_plan=paper,
    )


def _shape(one: dict[str, Any], cfg: ModelConfig, settings: Settings) -> cm.SessionShape:
    """A session of the benchmark, read off a calibration run."""
    n = one["sessions"]
    return cm.SessionShape(
        chunks=one["timings"]["records"] // n - 2,
        memory_frames=one["memory_frames"] // n,
        decoded_frames=one["decoded_frames"] // n,
        clip_frames=cfg.clip_frames,
        save_clips=settings.memory_save_clips,
    )


def _frame_bytes(video: Path, image_size: int) -> int:
    """A stored frame: the video's size, longer side at most twice the backbone's input."""
    import av

    from app.ingest.prepare import FrameNeeds
    from app.video import scaled_size

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        width, height = stream.width, stream.height
    w, h = scaled_size(width, height, FrameNeeds.of(image_size, 1.0).max_side)
    return w * h * 3


def fit(
    runs: list[dict[str, Any]], *, commit_runs: list[dict[str, Any]] | None = None
) -> cm.UnitCosts:
    """Unit costs from the calibration runs' timings (non-negative least squares); the
    commit costs from ``commit_runs`` (default: the same runs)."""
    timings = [r["timings"] for r in runs]
    calls = [c for t in timings for c in t["write_calls"]]
    write = cm.least_squares([[1.0, b, f] for b, f, _ in calls], [s for _, _, s in calls])
    rounds = [c for r in commit_runs or runs for c in r["timings"]["commit_rounds"]]
    commit = cm.least_squares([[1.0, n, b] for n, b, _ in rounds], [s for _, _, s in rounds])
    records = sum(t["records"] for t in timings)
    rest = [
        r["seconds"] - t["apply_s"] - t["write_s"] - t["commit_s"]
        for r, t in zip(runs, timings, strict=True)
    ]
    other = cm.least_squares([[1.0, t["records"]] for t in timings], rest)
    return cm.UnitCosts(
        apply_s_per_record=sum(t["apply_s"] for t in timings) / records,
        write_s_per_call=write[0],
        write_s_per_session=write[1],
        write_s_per_frame=write[2],
        commit_s_per_round=commit[0],
        commit_s_per_snapshot=commit[1],
        commit_s_per_byte=commit[2],
        other_s_per_run=other[0],
        other_s_per_record=other[1],
        decode_cpu_s_per_record=sum(t["decode_cpu_s"] for t in timings)
        / sum(t["decode_tasks"] for t in timings),
        main_cpu_share=sum(t["process_cpu_s"] for t in timings) / sum(r["seconds"] for r in runs),
    )


def _compare(guess: cm.Prediction, measured: dict[str, Any]) -> dict[str, Any]:
    t = measured["timings"]
    fps = measured["decoded_frames_per_second"]
    return {
        "sessions": guess.sessions,
        "predicted_fps": round(guess.decoded_frames_per_second, 1),
        "measured_fps": fps,
        "error_pct": round(100 * (guess.decoded_frames_per_second - fps) / fps, 1),
        "predicted_s": round(guess.seconds, 2),
        "measured_s": measured["seconds"],
        "predicted_phases_s": guess.phases_s,
        "measured_phases_s": {
            "apply": t["apply_s"],
            "write": t["write_s"],
            "commit": t["commit_s"],
            "other": round(measured["seconds"] - t["apply_s"] - t["write_s"] - t["commit_s"], 3),
        },
        "predicted_commit_rounds": guess.commit_rounds,
        "measured_commit_rounds": measured["commit_rounds"],
        "predicted_commit_bytes_per_round": round(guess.commit_bytes_per_round),
        "measured_commit_bytes_per_round": measured["commit_bytes_per_round"],
        "predicted_commit_bytes": round(guess.commit_bytes),
        "measured_commit_bytes": measured["commit_bytes"],
        "predicted_write_calls": guess.write_calls,
        "measured_write_calls": len(t["write_calls"]),
        "predicted_decode_bound_s": round(guess.decode_bound_s, 2),
        "measured_process_cpu_s": t["process_cpu_s"],
        "measured_decode_cpu_s": t["decode_cpu_s"],
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


# ====================================================================== the paper preset
def paper_plan(
    settings: Settings,
    units: cm.UnitCosts,
    tiny_sizes: cm.Bytes,
    workdir: Path,
    *,
    measured_preset: str = "tiny",
) -> dict[str, Any]:
    """The ``paper`` preset on one H200, then divided over workers; ``units`` and
    ``tiny_sizes`` were measured here with the ``measured_preset`` model."""
    cfg = ModelConfig.preset("paper")
    device = resolve_device(settings.device)
    flops = _paper_flops(cfg)
    if device == "cuda":
        rates = measure_paper_on_cuda(cfg)
    else:
        # ingest runs the backbone in bf16 on CUDA (CARTMEM_BACKBONE_AUTOCAST=auto)
        bf16 = H200_PEAK_FLOPS["bf16"] * ASSUMED_UTILIZATION
        fp32 = H200_PEAK_FLOPS["fp32"] * ASSUMED_UTILIZATION
        rates = {
            "source": "estimate: FLOPs / (H200 peak x assumed utilization), no GPU here; "
            "backbone at bf16 peak (ingest's default on CUDA), sampler at fp32 peak",
            "backbone_frames_per_s": bf16 / flops["backbone_per_frame"],
            "sampler_clips_per_s": fp32 / flops["sampler_per_clip"],
            "reserved_bytes": ASSUMED_RESERVED_BYTES,
            "fp32_backbone_frames_per_s_estimate": fp32 / flops["backbone_per_frame"],
        }
    decode = _decode_cost(cfg, settings, workdir)
    inputs = cm.DevicePlanInputs(
        device_memory_bytes=H200_MEMORY_BYTES,
        reserved_bytes_estimate=int(rates["reserved_bytes"]),
        memory_bytes_fp32=Memory.nbytes_per_session(cfg, torch.float32),
        memory_bytes_fp16=Memory.nbytes_per_session(cfg, torch.float16),
        backbone_frames_per_s=float(rates["backbone_frames_per_s"]),
        sampler_clips_per_s=float(rates["sampler_clips_per_s"]),
        decode_cpu_s_per_source_frame=decode["cpu_s_per_source_frame"],
        host_cores=H200_HOST_CORES,
        camera_fps=CAMERA_FPS,
        memory_fps=cfg.fps,
        clip_frames=cfg.clip_frames,
        save_clips=settings.memory_save_clips,
        commit_interval_s=settings.commit_interval_s,
        stored_frame_bytes=decode["stored_frame_bytes"],
        thumbnail_bytes_per_memory_frame=tiny_sizes.thumbnail,
        chunk_seconds=4.0,
        apply_s_per_record=units.apply_s_per_record,
        database_write_bytes_per_s_estimate=ASSUMED_DATABASE_BYTES_PER_S,
    )
    return {
        "preset": cfg.name,
        "inputs": dataclasses.asdict(inputs),
        "labels": {
            "measured_here": [
                "decode_cpu_s_per_source_frame",
                "stored_frame_bytes",
                f"apply_s_per_record ({measured_preset} preset, the synthetic session's frames)",
                f"thumbnail_bytes_per_memory_frame ({measured_preset} preset's video)",
            ],
            "exact": ["memory_bytes_fp32", "memory_bytes_fp16", "clip_frames", "memory_fps"],
            "estimates": [
                "device_memory_bytes (139 GiB usable)",
                f"database_write_bytes_per_s_estimate ({ASSUMED_DATABASE_BYTES_PER_S:.3g} B/s)",
                f"host_cores ({H200_HOST_CORES})",
                f"camera ({CAMERA[0]}x{CAMERA[1]} at {CAMERA_FPS:g} fps)",
                *([] if device == "cuda" else _ESTIMATED_WITHOUT_GPU),
            ],
        },
        "device_rates": {
            k: v if isinstance(v, str) else round(float(v), 2) for k, v in rates.items()
        },
        "flops": flops,
        "decode": decode,
        "one_worker": cm.plan(inputs),
        "workers": [cm.divide(inputs, w) for w in (1, 2, 4, 8)],
    }


def _paper_flops(cfg: ModelConfig) -> dict[str, float]:
    """FLOPs of the backbone per frame and of one sampler write of a clip (shapes only:
    the network is built on the meta device, nothing is computed)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = LongVMNet(cfg, pretrained_backbone=False)
    net.eval()
    n = cfg.memory_size + cfg.clip_tokens  # candidates of one write
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net.backbone(
            torch.zeros(1, cfg.image_size, cfg.image_size, 3, dtype=torch.uint8, device="meta")
        )
    backbone = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net.sampler(
            torch.zeros(1, n, cfg.backbone_channels, device="meta"),
            torch.zeros(1, n, dtype=torch.long, device="meta"),
            torch.zeros(1, n, dtype=torch.long, device="meta"),
            torch.ones(1, n, dtype=torch.bool, device="meta"),
        )
    return {
        "backbone_per_frame": float(backbone),
        "sampler_per_clip": float(counter.get_total_flops()),
    }


def measure_paper_on_cuda(cfg: ModelConfig, *, calls: int = 3) -> dict[str, Any]:
    """Backbone frames/s and sampler clips/s of the paper preset (random weights: timings
    do not depend on them) on the CUDA device, and the peak device memory of those calls.

    The backbone runs as ingest runs it on CUDA by default (``DEVICE_BACKBONE_DEFAULTS``:
    several sessions' clips per fixed-shape call, bf16), and also one clip a call in
    float32 (how it ran before), for the ratio; the sampler writes one clip a call.
    """
    from app.bench.stopwatch import Stopwatch

    net = LongVMNet(cfg, pretrained_backbone=False).to("cuda").eval()
    clips_per_call, autocast = DEVICE_BACKBONE_DEFAULTS["cuda"]
    batched = BackboneRun(batch_frames=clips_per_call * cfg.clip_frames, autocast=autocast)
    clip = np.random.default_rng(0).integers(
        0, 256, (1, cfg.clip_frames, 252, 448, 3), dtype=np.uint8
    )  # (B, T, H, W, 3): a 480p camera frame as decoding keeps it
    sessions = [clip[0]] * clips_per_call
    watch = Stopwatch("cuda")
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        memory = net.write(None, clip)  # warm-up: kernels chosen, allocator filled
        net.encode_clips(sessions, batched)
        for _ in range(calls):
            with watch.phase("backbone"):
                net.encode_clips(sessions, batched)
            with watch.phase("backbone_per_clip_fp32"):
                tokens = net.encode_frames(clip)
            with watch.phase("sampler"):
                memory = net.write_tokens(memory, tokens)
    frames = calls * cfg.clip_frames
    return {
        "source": f"measured on {torch.cuda.get_device_name(0)}: backbone {clips_per_call} "
        f"clips a call in {autocast}, sampler float32 one clip a call",
        "backbone_frames_per_s": frames * clips_per_call / watch.seconds["backbone"],
        "fp32_per_clip_backbone_frames_per_s": frames / watch.seconds["backbone_per_clip_fp32"],
        "sampler_clips_per_s": calls / watch.seconds["sampler"],
        "reserved_bytes": int(torch.cuda.max_memory_allocated()),
    }


def _decode_cost(cfg: ModelConfig, settings: Settings, workdir: Path) -> dict[str, Any]:
    """CPU seconds per source frame to decode a 480p H.264 camera stream as ingest does
    (``prepare``: contract check, decode, scale to twice the backbone's input), one thread."""
    from app.ingest.prepare import FrameNeeds, prepare
    from app.ingest.records import Record
    from app.publish import session_messages

    video = camera_video(workdir / "camera.mp4")
    needs = FrameNeeds.of(cfg.image_size, cfg.fps)
    records = [
        Record("camera", 0, i, m.key, tuple(m.headers), m.value)
        for i, m in enumerate(session_messages(video, "camera-0", chunk_seconds=4.0))
    ]
    prepare(records[1], settings, needs)  # warm-up
    began = time.thread_time()
    prepared = [prepare(r, settings, needs) for r in records]
    cpu = time.thread_time() - began
    decoded = [p.decoded for p in prepared if p.decoded is not None]
    frames = [f for d in decoded for f in d.frames]
    source_frames = round(_seconds(video) * CAMERA_FPS)
    return {
        "camera": f"{CAMERA[0]}x{CAMERA[1]} H.264 at {CAMERA_FPS:g} fps, 4 s chunks",
        "source_frames": source_frames,
        "cpu_s": round(cpu, 3),
        "cpu_s_per_source_frame": cpu / source_frames,
        "stored_frame_bytes": int(frames[0].nbytes),
        "stored_frame_shape": list(frames[0].shape),
    }


def camera_video(path: Path, seconds: float = 16.0) -> Path:
    """A synthetic 480p camera stream: moving shapes over noise, H.264, key frame every 2 s."""
    import av

    width, height = CAMERA
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(CAMERA_FPS))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(int(2 * CAMERA_FPS)), "preset": "veryfast"}
        for i in range(int(seconds * CAMERA_FPS)):
            image = background.copy()
            x = (i * 7) % (width - 120)
            image[100:220, x : x + 120] = (40 * i) % 256  # (H, W, 3): a moving block
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _seconds(video: Path) -> float:
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return float(stream.frames / stream.average_rate) if stream.average_rate else 0.0


# ====================================================================== files
def to_json(result: CapacityResult) -> dict[str, Any]:
    return {"benchmark": "capacity", **dataclasses.asdict(result)}


def plot(result: CapacityResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for rows, marker, label in (
        (result.calibration, "o", "calibration runs"),
        (result.validation, "s", "validation runs"),
    ):
        if rows:
            x = [r["sessions"] for r in rows]
            ax.plot(
                x, [r["measured_fps"] for r in rows], marker, color="C0", label=f"{label}, measured"
            )
            ax.plot(
                x,
                [r["predicted_fps"] for r in rows],
                marker,
                color="C1",
                mfc="none",
                label=f"{label}, predicted",
            )
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent sessions")
    ax.set_ylabel("decoded frames per second")
    ax.set_title(f"Capacity model, {result.preset} preset on {result.device}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--paper-only",
        action="store_true",
        help="only the paper preset's plan (the GPU script: device rates measured on cuda)",
    )
    args = parser.parse_args(argv)
    result = run(
        Settings.from_env(),
        quick=args.quick,
        validate=not args.paper_only,
        calibration=(1,) if args.paper_only else None,
        log=lambda line: print(line, file=sys.stderr),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    figures = to_json(result) | {
        "command": "python -m app.bench.capacity "
        + " ".join(sys.argv[1:] if argv is None else argv)
    }
    (args.out / "capacity.json").write_text(json.dumps(figures, indent=2) + "\n")
    plot(result, args.out / "capacity.png")
    print(json.dumps(result.validation or result.paper_plan["one_worker"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
