"""Checkpoint format: ``DIR/config.json`` (the ModelConfig + a format version) and
``DIR/model.safetensors`` (every weight, the backbone's included). Nothing is pickled.

The backbone is saved too, so a backbone fine-tuned on the store domain travels with the
model and loading never needs the stock weights file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from model.config import ModelConfig
from model.errors import CheckpointError, ConfigError
from model.pair_config import PAIR_FORMAT, listed_members

FORMAT = "cartmem.longvmnet"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def write_checkpoint(directory: str | Path, cfg: ModelConfig, module: nn.Module) -> Path:
    """Write ``module``'s weights and ``cfg`` into ``directory`` (created if needed).

    Each file is written under a temporary name and renamed, so a reader never sees half a
    file.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    weights_tmp = out / (WEIGHTS_FILE + ".tmp")
    # save_model (not save_file) copes with tensors that share storage.
    safetensors.torch.save_model(
        module, str(weights_tmp), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    )
    os.replace(weights_tmp, out / WEIGHTS_FILE)
    config_tmp = out / (CONFIG_FILE + ".tmp")
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": cfg.to_dict()}
    config_tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(config_tmp, out / CONFIG_FILE)
    return out


def read_config(directory: str | Path) -> ModelConfig:
    """The architecture stored in a checkpoint directory."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a cartmem checkpoint: {CONFIG_FILE} is missing.")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}).") from None
    if document.get("format") == PAIR_FORMAT:
        members = ", ".join(repr(m) for m in listed_members(document))
        raise CheckpointError(
            f"{path} is a model pair's config (model/pair.py), which only the service runs: "
            f"give one of its member checkpoints ({members}, relative to it)."
        )
    if document.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} config.")
    if document.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {document.get('format_version')}; "
            f"this code reads version {FORMAT_VERSION}."
        )
    try:
        return ModelConfig.from_dict(document["config"])
    except (ConfigError, KeyError) as exc:
        raise CheckpointError(f"{path} holds an unusable model config: {exc}") from None


def read_weights(
    module: nn.Module,
    directory: str | Path,
    device: torch.device | str,
    *,
    fresh: tuple[str, ...] = (),
) -> None:
    """Load ``DIR/model.safetensors`` into ``module``: every key must match, except keys
    under the ``fresh`` prefixes, which the module may lack (ignored) or the file may lack
    (the module keeps its initial weights): layers a run builds anew, e.g. another mixer."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{directory} is not a cartmem checkpoint: {WEIGHTS_FILE} is missing."
        )
    try:
        missing, unexpected = safetensors.torch.load_model(
            module, str(path), strict=False, device=str(device)
        )
    except RuntimeError as exc:  # a tensor's shape differs from the config's architecture
        raise CheckpointError(f"{path} does not match its config: {exc}") from None
    missing = [k for k in missing if not k.startswith(fresh)]
    unexpected = [k for k in unexpected if not k.startswith(fresh)]
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match its config: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}."
        )
