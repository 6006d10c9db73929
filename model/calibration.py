"""Calibrating activity probabilities on a validation split, so that 0.8 means 80 %.

The activity head is trained with a focal loss, which is known to leave probabilities
under- or over-confident (it down-weights the easy examples it is sure of), and a flag a
checkout raises from them should carry a confidence that means what it says. We fit one
affine map of the logit shared by every activity (Platt scaling with a shared bias, the
two-parameter form of temperature scaling): ``p = sigmoid(scale * logit + bias)``. Shared
and monotone, it changes no ranking, so recall@kx and every top-k answer stay the same;
with two parameters it needs only a few hundred validation answers and cannot overfit them.

Labels: every activity question of the split, with its swapped-product twin
(``model.data.swapped``), gives one (logit, label) pair per activity; a twin's labels are all
0. The map lives in the checkpoint's config (``activity_logit_scale``/``_bias``), so every
reader of the checkpoint (worker, reconciliation, eval) applies it. Run::

    python -m model.calibration --data DATA --checkpoint RUN --out CALIBRATED [--split val]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: Bins of the expected calibration error.
ECE_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """``p = sigmoid(scale * logit + bias)``."""

    scale: float = 1.0
    bias: float = 0.0

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.scale * logits + self.bias)))


def fit(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """The map that minimises the binary cross-entropy of ``labels`` (0/1) given ``logits``
    (any shape, paired element by element)."""
    x = torch.as_tensor(logits, dtype=torch.float64).flatten()
    y = torch.as_tensor(labels, dtype=torch.float64).flatten()
    if x.numel() == 0 or y.min() == y.max():
        raise ValueError("Calibration needs answers with both present and absent activities.")
    log_scale = torch.zeros((), dtype=torch.float64, requires_grad=True)  # scale stays > 0
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    solver = torch.optim.LBFGS([log_scale, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        solver.zero_grad()
        loss = F.binary_cross_entropy_with_logits(log_scale.exp() * x + bias, y)
        loss.backward()
        return loss

    solver.step(closure)
    return Calibration(float(log_scale.detach().exp()), float(bias.detach()))


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Mean |frequency - confidence| over equal-width probability bins, weighted by their
    share of the pairs (Guo et al. 2017, for independent binary outcomes)."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            error += chosen.mean() * abs(y[chosen].mean() - p[chosen].mean())
    return float(error)


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    """The logits behind sigmoid ``probabilities`` (clipped away from 0 and 1)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    return np.log(p) - np.log1p(-p)


def validation_answers(data: Path, checkpoint: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw activity logits ``(Q, A)`` and labels ``(Q, A)`` of every activity question of
    ``split`` (twins included), answered from memories written once by ``checkpoint``."""
    from model.data.split import load_split
    from model.data.token_cache import TokenCache, default_cache_dir
    from model.evaluate.two_stage import populate
    from model.memory import Memory
    from model.network import LongVMNet
    from model.queries import ActivityPrediction, ActivityQuery, ActivityTarget
    from model.synth.reader import read_dataset

    net = LongVMNet.load(checkpoint)
    # read the model's own probabilities, whatever the checkpoint holds
    net.set_answering(activity_logit_scale=1.0, activity_logit_bias=0.0)
    dataset = read_dataset(data)
    cache = TokenCache(default_cache_dir(data), net.cfg, net.backbone)
    split_data = load_split(dataset, split, net.cfg, cache, swap_fraction=1.0)
    memories = populate(net, split_data)
    order = list(memories)
    memory = Memory.cat([memories[v] for v in order])
    examples = [
        (e, i)
        for i, v in enumerate(order)
        for e in split_data.examples[v]
        if isinstance(e.query, ActivityQuery)
    ]
    predictions = net.answer(memory, [e.query_at(i) for e, i in examples])
    labels = np.zeros((len(examples), net.cfg.num_activities))
    for row, (example, _) in enumerate(examples):
        assert isinstance(example.target, ActivityTarget)
        labels[row, list(example.target.labels)] = 1.0
    probabilities = np.stack(
        [p.probabilities for p in predictions if isinstance(p, ActivityPrediction)]
    )
    return logits_of(probabilities), labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the calibrated checkpoint")
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from model.network import LongVMNet

    logits, labels = validation_answers(args.data, args.checkpoint, args.split)
    calibration = fit(logits, labels)
    net = LongVMNet.load(args.checkpoint)
    net.set_answering(activity_logit_scale=calibration.scale, activity_logit_bias=calibration.bias)
    net.save(args.out)
    record = {
        "split": args.split,
        "answers": int(labels.shape[0]),
        "scale": round(calibration.scale, 6),
        "bias": round(calibration.bias, 6),
        "ece_before": round(expected_calibration_error(Calibration().apply(logits), labels), 6),
        "ece_after": round(expected_calibration_error(calibration.apply(logits), labels), 6),
    }
    json.dump(record, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
