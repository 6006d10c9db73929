"""``TrainConfig``: how a Long-VMNet is trained (the architecture is ``ModelConfig``'s)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from model.config import WRITER_NAMES
from model.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; saved next to every checkpoint a run writes.

    The paper trains 10 epochs from a trained TubeDETR with learning rates 1e-5 (sampler)
    and 1e-7 (the rest). We start from scratch, so both rates are far higher (see
    ``docs/MODEL.md``, "Training").
    """

    preset: str = "tiny"
    writer: str = "neural"  # the writer trained with (``random``: the paper's Table 3 ablation)
    continual: bool = True  # online continual loss over the video's last ``past_queries``
    past_queries: int = 2  # p
    replay_queries: int = 4  # older queries of the video asked again (see loop.replayed)
    epochs: int = 5  # the shipped tiny checkpoint's, 105 training videos (docs/RESULTS.md)
    batch_size: int = 8  # videos per batch (lanes); never two items of one video
    queries_per_clip: int = 8  # queries asked of a freshly written memory per step
    lr_sampler: float = 1e-3
    lr_rest: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.03  # fraction of training with a linearly rising learning rate
    min_lr_factor: float = 0.1  # cosine decay to this fraction of each rate
    grad_clip: float = 1.0
    temperature_start: float = 1.5  # Gumbel temperature, annealed linearly (paper: 1.5 -> 1)
    temperature_end: float = 1.0
    # share of positive activity queries that also get a swapped-product twin: the same
    # window, a product nobody touched in it, answer "nothing" (``model.data.swapped``)
    swap_negatives: float = 0.0
    # each video starts at a random step in [0, time_shift] of the training timeline, so
    # that steps of long sessions are trained on (``model.train.time_shift``); 0: the paper
    time_shift: int = 0
    eval_every: int = 1  # epochs between evaluations on the validation split
    seed: int = 0
    amp: bool = True  # bfloat16 autocast, used only on CUDA

    def __post_init__(self) -> None:
        if self.writer not in WRITER_NAMES:
            raise ConfigError(f"TrainConfig.writer must be one of {', '.join(WRITER_NAMES)}.")
        if self.writer == "merge":
            raise ConfigError("The merge writer has nothing to train; evaluate it instead.")
        for name in ("epochs", "batch_size", "eval_every", "queries_per_clip"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"TrainConfig.{name} must be at least 1.")
        if self.past_queries < 0 or self.replay_queries < 0:
            raise ConfigError("TrainConfig.past_queries and replay_queries must be >= 0.")
        if min(self.lr_sampler, self.lr_rest) <= 0:
            raise ConfigError("Learning rates must be positive.")
        if self.time_shift < 0:
            raise ConfigError("TrainConfig.time_shift must be >= 0.")
        if not 0.0 <= self.swap_negatives <= 1.0:
            raise ConfigError("TrainConfig.swap_negatives must be in [0, 1].")
        if min(self.temperature_start, self.temperature_end) <= 0:
            raise ConfigError("Gumbel temperatures must be positive.")

    @property
    def past(self) -> int:
        """Past queries in the loss: ``past_queries``, or 0 without the continual loss."""
        return self.past_queries if self.continual else 0

    @property
    def replay(self) -> int:
        """Replayed older queries: ``replay_queries``, or 0 without the continual loss."""
        return self.replay_queries if self.continual else 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
