"""AdamW with two parameter groups: the neural sampler, and the rest (paper: separate
learning rates). The frozen backbone is in neither."""

from __future__ import annotations

import torch
from torch import nn

from model.network import LongVMNet
from model.train.config import TrainConfig

SAMPLER_GROUP = "sampler"
REST_GROUP = "rest"


def make_optimizer(net: LongVMNet, cfg: TrainConfig) -> torch.optim.AdamW:
    sampler: list[nn.Parameter] = []
    rest: list[nn.Parameter] = []
    for name, parameter in net.named_parameters():
        if not parameter.requires_grad:
            continue  # the frozen backbone
        (sampler if name.startswith("sampler.") else rest).append(parameter)
    groups = [
        {"params": sampler, "lr": cfg.lr_sampler, "base_lr": cfg.lr_sampler, "name": SAMPLER_GROUP},
        {"params": rest, "lr": cfg.lr_rest, "base_lr": cfg.lr_rest, "name": REST_GROUP},
    ]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Every group's rate = its base rate x ``factor``."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
