"""What a resumed run needs beyond the model: optimizer, position and random states.

Stored as a pair, nothing pickled: ``train_state.safetensors`` (optimizer moments, torch
random states) and ``train_state.json`` (epoch, step, optimizer scalars and groups, the
numpy generator's state, the run's configuration under ``{kind}_config``: ``TrainConfig``
for training, ``PretrainConfig`` for backbone pretraining). The JSON is written last and
names the format, so a directory without it has no usable state. States are saved at the
end of an epoch, where every video memory is reset anyway: nothing else is needed to
continue.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from model.errors import CheckpointError
from model.train.config import TrainConfig

FORMAT = "cartmem.train_state"
FORMAT_VERSION = 1
STATE_JSON = "train_state.json"
STATE_TENSORS = "train_state.safetensors"


@dataclass(frozen=True)
class Position:
    """Where a run stands: epochs completed and optimizer steps taken."""

    epoch: int
    step: int


def save_state(
    directory: Path,
    optimizer: torch.optim.Optimizer,
    position: Position,
    rng: np.random.Generator,
    gumbel: torch.Generator | None,
    config: Mapping[str, Any],
    *,
    kind: str = "train",
) -> None:
    """Write the state files into ``directory`` (next to the model checkpoint); ``config``
    is the run's configuration as a dict, kept as ``{kind}_config``."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if gumbel is not None:
        tensors["rng.gumbel"] = gumbel.get_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    scalars: dict[str, dict[str, Any]] = {}
    optimizer_state = optimizer.state_dict()
    for pid, entries in optimizer_state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    tmp = directory / (STATE_TENSORS + ".tmp")
    safetensors.torch.save_file(tensors, str(tmp))
    os.replace(tmp, directory / STATE_TENSORS)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "epoch": position.epoch,
        "step": position.step,
        "numpy_rng": rng.bit_generator.state,
        "optimizer_groups": optimizer_state["param_groups"],
        "optimizer_scalars": scalars,
        f"{kind}_config": dict(config),
    }
    tmp = directory / (STATE_JSON + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, directory / STATE_JSON)


def read_train_config(directory: Path) -> TrainConfig:
    """The ``TrainConfig`` a saved state was trained with."""
    return TrainConfig.from_dict(read_config_document(directory, "train"))


def read_config_document(directory: Path, kind: str) -> dict[str, Any]:
    """The configuration a saved ``kind`` state ("train", "pretrain") was run with."""
    return dict(_document(directory, kind)[f"{kind}_config"])


def load_state(
    directory: Path,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    gumbel: torch.Generator | None,
    *,
    kind: str = "train",
) -> Position:
    """Restore optimizer and random states in place; returns the saved position."""
    document = _document(directory, kind)
    tensors = safetensors.torch.load_file(str(directory / STATE_TENSORS))
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in document["optimizer_scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": document["optimizer_groups"]})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{directory} holds another model's optimizer: {exc}") from None
    rng.bit_generator.state = document["numpy_rng"]
    torch.set_rng_state(tensors["rng.torch"])
    if gumbel is not None:
        gumbel.set_state(tensors["rng.gumbel"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return Position(int(document["epoch"]), int(document["step"]))


def has_state(directory: Path) -> bool:
    return (directory / STATE_JSON).is_file() and (directory / STATE_TENSORS).is_file()


def _document(directory: Path, kind: str) -> dict[str, Any]:
    """The state's JSON, refused unless it is a ``kind`` run's."""
    path = directory / STATE_JSON
    if not path.is_file() or not (directory / STATE_TENSORS).is_file():
        raise CheckpointError(f"{directory} holds no training state to resume from.")
    document = json.loads(path.read_text())
    if document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a version-{FORMAT_VERSION} {FORMAT} file.")
    if f"{kind}_config" not in document:
        raise CheckpointError(f"{directory} holds another kind of run's state, not {kind}ing.")
    return document
