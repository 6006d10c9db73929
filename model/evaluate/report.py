"""``evaluate_checkpoint``: a checkpoint on a dataset split, with the trivial baselines beside.

What ``cartmem eval`` calls: load the checkpoint (architecture from its file), read the
split through the token cache, run the two stages with the chosen writer, and score the
trivial baselines on the same queries (activity frequencies from the training split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.backbone_run import PER_CLIP, BackboneRun
from model.data.split import Progress, load_split
from model.data.token_cache import TokenCache, default_cache_dir
from model.evaluate.baselines import evaluate_baselines
from model.evaluate.metrics import Summary
from model.evaluate.rereading import evaluate_rereading
from model.evaluate.two_stage import EvalResult, evaluate
from model.network import LongVMNet
from model.synth.reader import read_dataset


@dataclass(frozen=True)
class EvalReport:
    checkpoint: str
    result: EvalResult
    baselines: Summary
    rereading: EvalResult | None = None  # the per-query re-reading baseline, when asked for

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            **self.result.to_dict(),
            "baselines": self.baselines.to_dict(),
            "rereading": None if self.rereading is None else self.rereading.to_dict(),
        }


def evaluate_checkpoint(
    data: Path,
    checkpoint: Path,
    *,
    writer: str | None = None,
    split: str = "test",
    cache_dir: Path | None = None,
    device: str | None = None,
    progress: Progress | None = None,
    rereading: bool = False,
    memory_size: int | None = None,
    backbone_run: BackboneRun = PER_CLIP,
) -> EvalReport:
    """Metrics of ``checkpoint`` on ``data``'s ``split`` (writer: the checkpoint's by default).

    ``progress(done, total)`` counts videos: first while their tokens are read (or
    computed into the cache), then while their memories are written. ``rereading`` also
    answers the same queries with the per-query re-reading baseline (no memory);
    ``memory_size`` reads the videos into memories of that many tokens instead of the
    checkpoint's; ``backbone_run`` runs the backbone another way (in bf16, as ingest does
    on CUDA).
    """
    where = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = LongVMNet.load(checkpoint, device=where)
    if memory_size is not None:
        net.resize_memory(memory_size)
    dataset = read_dataset(Path(data))
    cache = TokenCache(
        cache_dir or default_cache_dir(Path(data)), net.cfg, net.backbone, backbone_run
    )
    # every positive activity query also gets its swapped-product twin (``swap-reject``)
    split_data = load_split(dataset, split, net.cfg, cache, swap_fraction=1.0, progress=progress)
    result = evaluate(net, split_data, writer=writer, progress=progress)
    baselines = evaluate_baselines(
        dataset.queries.get(split, ()), dataset.queries.get("train", ()), dataset.activities
    )
    reread = evaluate_rereading(net, split_data) if rereading else None
    return EvalReport(str(checkpoint), result, baselines, reread)
