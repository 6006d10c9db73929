"""Loading the model the service runs: which checkpoint, which device, which version string."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import SettingsError
from app.settings import Settings, env_name

if TYPE_CHECKING:  # for the type checker only: importing torch here would slow every CLI call
    from model import LongVMNet
    from model.backbone_run import BackboneRun
    from model.pair import Served

#: Clips per backbone call and backbone precision when the settings say "by device": on CPU
#: one clip per call in float32 (larger calls ran no faster there, docs/BENCHMARKS.md);
#: on CUDA eight clips in bf16, where one session's clip leaves most of the GPU idle.
DEVICE_BACKBONE_DEFAULTS = {"cpu": (1, "off"), "cuda": (8, "bf16")}


@dataclass(frozen=True)
class LoadedModel:
    net: Served  # one network, or a pair of them that names products together (model.pair)
    version: (
        str  # "<preset>@<sha256[:12] of config + weights>", stored with every memory and answer
    )
    device: str
    checkpoint: Path


def resolve_device(setting: str) -> str:
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"{env_name('device')} is cuda but no CUDA device is visible.")
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def checkpoint_dir(settings: Settings) -> Path:
    if settings.checkpoint_path:
        path = Path(settings.checkpoint_path).expanduser()
        if not (path / "config.json").is_file():
            raise SettingsError(
                f"{env_name('checkpoint_path')} = {path} is not a checkpoint directory "
                "(it needs config.json and model.safetensors, or a model pair's config.json)."
            )
        return path
    from model.shipped import SERVED, default_checkpoint

    return default_checkpoint(SERVED)


def load_model(settings: Settings) -> LoadedModel:
    """The checkpoint named by the settings (or the shipped one), on the configured device."""
    from model.pair import ModelPair, load_served

    directory = checkpoint_dir(settings)
    device = resolve_device(settings.device)
    net = load_served(directory, device=device)
    name = net.name if isinstance(net, ModelPair) else net.cfg.name
    return LoadedModel(net, model_version(name, directory), device, directory)


def one_network(loaded: LoadedModel) -> tuple[LoadedModel, LongVMNet]:
    """``loaded`` and its network where it is one network; for a model pair, its lead under
    the lead's own version and checkpoint. The benchmarks that time one network's parts
    measure the network that writes, finds the moves and answers every question."""
    from model import LongVMNet
    from model.pair_config import pair_members

    if isinstance(loaded.net, LongVMNet):
        return loaded, loaded.net
    lead = loaded.net.lead
    _name, directory, _partners = pair_members(loaded.checkpoint)
    version = model_version(lead.cfg.name, directory)
    return LoadedModel(lead, version, loaded.device, directory), lead


def backbone_run(settings: Settings, loaded: LoadedModel) -> BackboneRun:
    """How ingest runs the backbone: fixed-shape calls of whole clips, at some precision."""
    from model.backbone_run import BackboneRun

    clips, autocast = DEVICE_BACKBONE_DEFAULTS[loaded.device.split(":")[0]]
    return BackboneRun(
        batch_frames=(settings.backbone_batch_clips or clips) * loaded.net.cfg.clip_frames,
        autocast=autocast if settings.backbone_autocast == "auto" else settings.backbone_autocast,
    )


def model_version(name: str, directory: Path) -> str:
    """``<preset>@<12 hex digits>``: a hash of the weights and the config, since the config
    alone can change answers (memory size, calibration) with the same weights; a pair's
    covers its config and every member's weights and config."""
    from model.pair_config import checkpoint_files

    digest = hashlib.sha256()
    for path in checkpoint_files(directory):
        digest.update(path.read_bytes())
    return f"{name}@{digest.hexdigest()[:12]}"
