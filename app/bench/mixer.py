"""Attention against the Mamba mixer in the neural sampler, as the candidate tokens grow.

For each token count (memory + clip candidates of one session) and each mixer, at the paper
preset's sizes: one sampler training step (scores, relaxed top-m, straight-through gather,
forward + backward) and one inference write (scores, exact top-m, gather), each timed after
one untimed run and its peak memory taken. On the CPU every measurement runs in a fresh
child process, so that its peak memory is its own and a measurement that runs out of memory
is recorded as such instead of ending the run; on CUDA, where the allocator counts each
step's peak and running out of memory raises, they run in this process. A measurement
whose time, extrapolated from the same mixer's largest measured size (quadratic for
attention, linear for Mamba), would exceed ``max_seconds`` is not run and is recorded with
that prediction.

    cartmem bench mixer [--quick] [--out DIR] [--threads N]
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Candidate tokens per write: about 1k, 4k, 11,760 (the paper's m + k), 48k and 200k,
#: rounded to whole frames (memory and clip of equal size).
TOKENS = (1_000, 4_000, 11_760, 48_000, 200_000)
QUICK_TOKENS = (256, 1_024)
KINDS = ("training_step", "inference_write")
MIXERS = ("attention", "mamba")
#: How a mixer's time grows with the tokens, for deciding what not to run.
GROWTH = {"attention": 2.0, "mamba": 1.0}
#: glibc's malloc hands every block over 32 MB back to the kernel when it is freed, and the
#: kernel zeroes the pages again at their next use: at 48k tokens that zeroing was 15 s of
#: system time in a 13 s Mamba write (two processes, 6 million page faults), and made linear
#: work grow 1.7x faster than the tokens. The children keep freed memory for reuse instead,
#: as the caching allocators PyTorch recommends for CPU (jemalloc, tcmalloc) do; both mixers
#: run so. Other C libraries ignore these variables.
ALLOCATOR = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**62)}


@dataclass(frozen=True)
class Measurement:
    mixer: str
    kind: str
    tokens: int
    status: str  # "ok", "out of memory", "over the time limit", "skipped"
    seconds: float | None = None  # median of the timed runs
    runs_s: tuple[float, ...] = ()
    peak_bytes: int | None = None  # peak memory of the step above what the inputs hold
    note: str = ""


@dataclass(frozen=True)
class MixerBench:
    preset: str
    device: str
    threads: int
    max_seconds: float
    measurements: tuple[Measurement, ...]
    ratios: dict[str, dict[str, float]]  # kind -> tokens -> attention s / Mamba s
    allocator: dict[str, str] = dataclasses.field(default_factory=lambda: dict(ALLOCATOR))


def run(
    *,
    quick: bool = False,
    device: str = "cpu",
    threads: int | None = None,
    tokens: Sequence[int] | None = None,
    max_seconds: float = 600.0,
    log: Callable[[str], None] = lambda _line: None,
) -> MixerBench:
    preset = "tiny" if quick else "paper"
    threads = threads or _torch_threads()
    sizes = [_whole_frames(n, preset) for n in (tokens or (QUICK_TOKENS if quick else TOKENS))]
    found: list[Measurement] = []
    # size by size, the two mixers back to back: both see the machine in the same state
    for kind in KINDS:
        for n in sizes:
            for mixer in MIXERS:
                done = [m for m in found if (m.mixer, m.kind) == (mixer, kind)]
                predicted = _predicted_seconds(done, n, GROWTH[mixer])
                if predicted is not None and predicted > max_seconds:
                    result = Measurement(
                        mixer, kind, n, "skipped", note=f"predicted {predicted:.0f} s"
                    )
                else:
                    result = _measure(mixer, kind, n, preset, device, threads, max_seconds)
                log(f"[mixer] {mixer} {kind} {n} tokens: {_describe(result)}")
                found.append(result)
    return MixerBench(preset, device, threads, max_seconds, tuple(found), _ratios(found))


def plot(result: MixerBench, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, quantity in zip(axes, ("seconds", "peak_bytes"), strict=True):
        for mixer, colour in zip(MIXERS, ("#d8573b", "#3b7dd8"), strict=True):
            for kind, style in zip(KINDS, ("-o", "--s"), strict=True):
                rows = [
                    m
                    for m in result.measurements
                    if (m.mixer, m.kind, m.status) == (mixer, kind, "ok")
                ]
                values = [getattr(m, quantity) for m in rows]
                if quantity == "peak_bytes":
                    values = [v / 2**30 for v in values]
                label = f"{mixer}, {kind.replace('_', ' ')}"
                ax.plot([m.tokens for m in rows], values, style, color=colour, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("candidate tokens per write")
        ax.set_ylabel("seconds" if quantity == "seconds" else "peak memory, GiB")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Sampler mixers, {result.preset} preset, {result.device}, {result.threads} threads"
        " (missing points: out of memory, over the time limit or skipped; see the JSON)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def to_json(result: MixerBench) -> dict[str, Any]:
    return dataclasses.asdict(result)


# ---------------------------------------------------------------------- the parent
def _measure(
    mixer: str, kind: str, tokens: int, preset: str, device: str, threads: int, limit: float
) -> Measurement:
    """One measurement: in a child process on the CPU, in this process on CUDA."""
    job = dict(mixer=mixer, kind=kind, tokens=tokens, preset=preset, device=device)
    if device.startswith("cuda"):
        # CUDA counts each step's peak on its own (reset_peak_memory_stats) and raises a
        # catchable OutOfMemoryError, so a child process buys nothing there, and it costs
        # ~15 s of imports and CUDA start each (on an H200, 20 children were 4 minutes)
        return _in_this_process(job, threads)
    env = (
        os.environ
        | ALLOCATOR
        | {"PYTHONPATH": _repo_root() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    )
    command = [sys.executable, "-m", "app.bench.mixer", json.dumps(job), str(threads)]
    try:
        # the warm-up and the timed run: twice the step's time limit
        done = subprocess.run(command, capture_output=True, text=True, timeout=2 * limit, env=env)
    except subprocess.TimeoutExpired:
        return Measurement(mixer, kind, tokens, "over the time limit", note=f"{2 * limit:.0f} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return Measurement(**json.loads(lines[-1]))
    if done.returncode in (-9, 137):  # the kernel's out-of-memory killer
        return Measurement(mixer, kind, tokens, "out of memory", note="killed by the system")
    raise RuntimeError(f"the {mixer} {kind} at {tokens} tokens failed:\n{done.stderr[-2000:]}")


def _predicted_seconds(done: list[Measurement], tokens: int, growth: float) -> float | None:
    measured = [m for m in done if m.status == "ok" and m.seconds]
    if any(m.status != "ok" for m in done):
        return float("inf")  # a smaller size already failed
    if not measured:
        return None
    last = measured[-1]
    assert last.seconds is not None
    return last.seconds * (tokens / last.tokens) ** growth


def _ratios(found: list[Measurement]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        times = {
            (m.mixer, m.tokens): m.seconds
            for m in found
            if m.kind == kind and m.status == "ok" and m.seconds is not None
        }
        out[kind] = {
            str(n): round(times[("attention", n)] / times[("mamba", n)], 2)
            for mixer, n in times
            if mixer == "mamba" and ("attention", n) in times
        }
    return out


def _describe(m: Measurement) -> str:
    if m.status != "ok":
        return f"{m.status} {m.note}".strip()
    assert m.seconds is not None and m.peak_bytes is not None
    return f"{m.seconds:.3f} s, peak {m.peak_bytes / 2**20:.0f} MiB"


def _whole_frames(tokens: int, preset: str) -> int:
    """``tokens`` rounded to an even number of whole frames (memory and clip halves)."""
    from model.config import ModelConfig

    cells = ModelConfig.preset(preset).tokens_per_frame
    return 2 * cells * max(1, round(tokens / (2 * cells)))


def _repo_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _in_this_process(job: dict[str, Any], threads: int) -> Measurement:
    import torch

    try:
        return _child(job, threads)
    finally:
        torch.cuda.empty_cache()  # the next size starts from an empty cache


# ---------------------------------------------------------------------- the child
def _child(job: dict[str, Any], threads: int) -> Measurement:
    import torch

    from model.candidates import ClipTokens
    from model.config import ModelConfig
    from model.memory import Memory
    from model.sampler import NeuralSampler
    from model.writers import NeuralWriter

    torch.set_num_threads(threads)
    device = torch.device(job["device"])
    frames = job["tokens"] // 2 // ModelConfig.preset(job["preset"]).tokens_per_frame
    cfg = ModelConfig.preset(
        job["preset"], mixer=job["mixer"], clip_frames=frames, memory_size=job["tokens"] // 2
    )
    torch.manual_seed(0)
    writer = NeuralWriter(NeuralSampler(cfg).to(device), cfg.memory_size, cfg.clip_tokens)
    m, s, c = cfg.memory_size, cfg.tokens_per_frame, cfg.backbone_channels
    memory = Memory.empty(cfg, 1, device=device)
    memory.tokens.normal_()
    memory.valid.fill_(True)
    memory.time_index.copy_(torch.arange(m, device=device)[None] // s)  # earlier frames
    memory.spatial_index.copy_(torch.arange(m, device=device)[None] % s)
    memory.frames_seen.fill_(frames)
    clip = ClipTokens.from_frames(
        torch.randn(1, frames, s, c, device=device), memory.frames_seen, frames
    )
    direction = torch.randn(1, m, c, device=device)

    def training_step() -> None:
        writer.sampler.train().zero_grad(set_to_none=True)
        out = writer.write_train(memory, clip, temperature=1.0)
        (out.memory.tokens * direction).mean().backward()

    def inference_write() -> None:
        writer.sampler.eval()
        writer.write(memory, clip)

    step = training_step if job["kind"] == "training_step" else inference_write
    before = _memory_in_use(device)
    try:
        # an untimed first run: the heap grows to the step's size (the kernel zeroing fresh
        # pages would otherwise be timed only at the sizes measured once)
        warm_up = _timed(step, device)
        times = [_timed(step, device) for _ in range(3 if warm_up < 20.0 else 1)]
    except torch.OutOfMemoryError:
        return Measurement(job["mixer"], job["kind"], job["tokens"], "out of memory")
    peak = _peak_memory(device) - before
    return Measurement(
        job["mixer"],
        job["kind"],
        job["tokens"],
        "ok",
        round(statistics.median(times), 4),
        tuple(round(t, 4) for t in times),
        peak,
    )


def _timed(step: Callable[[], None], device: Any) -> float:
    import torch

    began = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - began


def _memory_in_use(device: Any) -> int:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return int(torch.cuda.memory_allocated(device))
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _peak_memory(device: Any) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


if __name__ == "__main__":
    print(json.dumps(dataclasses.asdict(_child(json.loads(sys.argv[1]), int(sys.argv[2])))))
