"""Sampler relaxation benchmark (issue 3): parallel sigmoid relaxation vs Xie-Ermon's loop.

At the paper's sizes (memory 5,880 + clip 5,880 tokens of 768 channels) it times, on this
machine's CPU and in one run:

- each relaxation alone, forward + backward, on the same perturbed scores;
- the sampler's whole training step (scoring transformer + relaxation + straight-through
  gather, forward + backward) with either relaxation;

and lists parameter counts and memory bytes per session of every preset. It writes
``OUT/sampler_relaxation.json`` (figures and a description of the machine) and
``OUT/sampler_relaxation.png``.

    python -m app.bench.sampler_relaxation --out out/bench
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from app.bench.machine import describe_machine
from model import LongVMNet, Memory, ModelConfig
from model.candidates import Candidates, ClipTokens
from model.relaxation import exact_top_k, gumbel_noise, relaxed_top_k
from model.sampler import NeuralSampler

_R = TypeVar("_R")


def iterative_relaxed_top_k(
    scores: Tensor, k: int, temperature: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Xie & Ermon (2019) relaxed top-k: straight-through weights and soft k-hot ``(B, n)``.

    k rounds of softmax over the Gumbel-perturbed scores; after each round the chosen mass
    is removed by adding ``log(1 - a)`` to the keys; the soft k-hot vector is the sum of the
    k softmaxes. Kept here only as the baseline: O(k * n) sequential work. The noise is
    drawn as ``relaxed_top_k`` draws it, so equal generators give both the same input.
    """
    keys = scores + gumbel_noise(tuple(scores.shape), device=scores.device, generator=generator)
    hard = exact_top_k(keys, k).to(scores.dtype)
    onehot = torch.zeros_like(keys)
    khot = torch.zeros_like(keys)
    tiny = torch.finfo(keys.dtype).tiny
    for _ in range(k):
        keys = keys + torch.log((1.0 - onehot).clamp_min(tiny))
        onehot = torch.softmax(keys / temperature, dim=-1)
        khot = khot + onehot
    return hard + (khot - khot.detach()), khot


def parallel_relaxed_top_k(
    scores: Tensor, k: int, temperature: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """The model's relaxation (``model.relaxation.relaxed_top_k``), same signature."""
    top = relaxed_top_k(scores, k, temperature, generator=generator)
    return top.weights, top.soft


RELAXATIONS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {
    "parallel": parallel_relaxed_top_k,
    "iterative": iterative_relaxed_top_k,
}


def _timed(fn: Callable[[], _R], repeats: int) -> tuple[float, list[float], _R]:
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def _saved_bytes(fn: Callable[[], _R]) -> tuple[_R, int]:
    """Run ``fn`` counting the bytes autograd keeps for the backward pass."""
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total


def relaxation_alone(n: int, k: int, repeats: int, names: list[str]) -> dict:
    """Forward + backward of each relaxation on the same scores and Gumbel noise."""
    base = torch.randn(1, n, generator=torch.Generator().manual_seed(0))
    direction = torch.randn(1, n, generator=torch.Generator().manual_seed(1))
    results: dict[str, Any] = {}
    for name in names:
        relax = RELAXATIONS[name]

        def step(relax: Callable[..., tuple[Tensor, Tensor]] = relax) -> dict:
            scores = base.clone().requires_grad_(True)
            generator = torch.Generator().manual_seed(2)  # the same noise for every case
            start = time.perf_counter()
            (weights, soft), saved = _saved_bytes(lambda: relax(scores, k, 1.0, generator))
            forward = time.perf_counter() - start
            (weights * direction).sum().backward()
            assert scores.grad is not None  # a leaf the relaxation used: backward filled it
            return {
                "forward_s": forward,
                "backward_s": time.perf_counter() - start - forward,
                "saved_for_backward_bytes": saved,
                "max_soft_weight": float(soft.detach().max()),
                "grad_finite": bool(torch.isfinite(scores.grad).all()),
            }

        median, times, last = _timed(step, repeats if name == "parallel" else 1)
        results[name] = {"median_s": median, "runs_s": times, **last}
    if len(names) == 2:
        results["ratio_iterative_over_parallel"] = (
            results["iterative"]["median_s"] / results["parallel"]["median_s"]
        )
    return results


def sampler_step(cfg: ModelConfig, repeats: int, names: list[str]) -> dict:
    """The sampler's training write at ``cfg``'s sizes: forward + backward, per relaxation."""
    torch.manual_seed(0)
    sampler = NeuralSampler(cfg).train()
    m, t, s, c = cfg.memory_size, cfg.clip_frames, cfg.tokens_per_frame, cfg.backbone_channels
    memory = Memory.empty(cfg, 1)
    memory.tokens.normal_()
    memory.valid.fill_(True)
    memory.time_index.copy_(torch.arange(m)[None] // s)  # a memory full of earlier frames
    memory.spatial_index.copy_(torch.arange(m)[None] % s)
    memory.frames_seen.fill_(10 * t)
    clip = ClipTokens.from_frames(torch.randn(1, t, s, c), memory.frames_seen, t)
    cand = Candidates.of(memory, clip)
    direction = torch.randn(1, m, c)

    def run(name: str) -> dict:
        sampler.zero_grad(set_to_none=True)
        start = time.perf_counter()
        scores = sampler(cand.tokens, cand.time_index, cand.spatial_index, cand.valid)
        scored = time.perf_counter()
        weights, _ = RELAXATIONS[name](scores, m, 1.0, torch.Generator().manual_seed(2))
        hard = weights.detach() > 0.5  # straight-through weights are exactly 0 or 1
        new = cand.gather(cand.slots(hard, m), weights)
        forward = time.perf_counter() - start
        (new.tokens * direction).mean().backward()
        end = time.perf_counter()
        output_layer = sampler.score.net[-1]
        assert isinstance(output_layer, nn.Linear)  # an MLP ends in a linear layer
        grad = output_layer.weight.grad
        return {
            "scoring_forward_s": scored - start,
            "forward_s": forward,
            "backward_s": end - start - forward,
            "total_s": end - start,
            "score_grad_nonzero": bool(grad is not None and grad.abs().sum() > 0),
        }

    results: dict[str, Any] = {}
    for name in names:
        median, times, last = _timed(partial(run, name), repeats if name == "parallel" else 1)
        results[name] = {"median_total_s": median, "runs_total_s": times, **last}
    if len(names) == 2:
        results["ratio_iterative_over_parallel"] = (
            results["iterative"]["median_total_s"] / results["parallel"]["median_total_s"]
        )
    return results


def preset_sizes() -> dict[str, dict]:
    """Parameters and memory bytes per session of every preset (random init, no download)."""
    out = {}
    for name in ModelConfig.preset_names():
        cfg = ModelConfig.preset(name)
        net = LongVMNet(cfg, pretrained_backbone=False)
        count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
        out[name] = {
            "backbone": cfg.backbone,
            "tokens_per_frame": cfg.tokens_per_frame,
            "clip_frames": cfg.clip_frames,
            "memory_size": cfg.memory_size,
            "channels": cfg.backbone_channels,
            "parameters_total": count(net),
            "parameters_backbone_frozen": count(net.backbone),
            "parameters_sampler": count(net.sampler),
            "parameters_trainable": sum(p.numel() for p in net.parameters() if p.requires_grad),
            "memory_bytes_per_session_fp32": Memory.nbytes_per_session(cfg, torch.float32),
            "memory_bytes_per_session_fp16": Memory.nbytes_per_session(cfg, torch.float16),
        }
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alone, step = results["relaxation_alone"], results["sampler_training_step"]
    labels, values = [], []
    for name in ("parallel", "iterative"):
        if name in alone:
            labels.append(f"{name}\nrelaxation only")
            values.append(alone[name]["median_s"])
    for name in ("parallel", "iterative"):
        if name in step:
            labels.append(f"{name}\nsampler step")
            values.append(step[name]["median_total_s"])
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(labels, values, color=["#3b7dd8", "#d8573b"] * 2)
    ax.set_yscale("log")
    ax.set_ylim(min(values) / 2, max(values) * 4)  # room for the labels
    ax.set_ylabel("seconds per sample (forward + backward), log scale")
    sizes = results["sizes"]
    ax.set_title(
        f"Sampler relaxation at n={sizes['n']}, k={sizes['k']} ({results['machine']['cpu']})"
    )
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:.3g} s", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON and PNG")
    parser.add_argument("--preset", default="paper", choices=ModelConfig.preset_names())
    parser.add_argument("--repeats", type=int, default=3, help="runs of the fast cases (median)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    parser.add_argument("--skip-iterative", action="store_true", help="time only the parallel one")
    args = parser.parse_args(argv)
    cfg = ModelConfig.preset("tiny" if args.quick else args.preset)
    n, k = cfg.memory_size + cfg.clip_tokens, cfg.memory_size
    names = ["parallel"] if args.skip_iterative else ["parallel", "iterative"]
    print(f"sizes: memory {k} + clip {cfg.clip_tokens} = {n} tokens of {cfg.backbone_channels}")
    results = {
        "benchmark": "sampler_relaxation",
        "command": "python -m app.bench.sampler_relaxation "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": describe_machine(),
        "preset": cfg.name,
        "sizes": {"n": n, "k": k, "channels": cfg.backbone_channels, "d_model": cfg.d_model},
    }
    results["relaxation_alone"] = relaxation_alone(n, k, args.repeats, names)
    print("relaxation alone:", json.dumps(results["relaxation_alone"], indent=1))
    results["sampler_training_step"] = sampler_step(cfg, args.repeats, names)
    print("sampler step:", json.dumps(results["sampler_training_step"], indent=1))
    results["presets"] = preset_sizes()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sampler_relaxation.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / "sampler_relaxation.png")
    print(f"wrote {args.out / 'sampler_relaxation.json'} and {args.out / 'sampler_relaxation.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
