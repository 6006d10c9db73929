"""On-disk cache of backbone tokens per video: the backbone is frozen, so run it once.

A video's tokens are ``(N, S, C)`` float32 for its ``N`` frames at the memory FPS, computed
as the live path on CPU does (``decode_video`` at ``cfg.fps``, then the backbone on clips
of ``cfg.clip_frames`` frames, one call each, ``run`` saying at what precision), except
that ingest pads a session's last, shorter clip to the full call and this does not: a
kernel's rounding may depend on the call's shape, so those few frames' tokens may differ
from ingest's in the last bits.

Files: ``CACHE/<backbone id>/<video stem>-<file hash>.npy`` with a ``backbone.json``
beside them saying what the id stands for. The backbone id hashes everything that
changes the tokens: the backbone's name, input size, grid and channels, the memory FPS
and clip length, and a hash of its weights. The file hash is the video's content hash.
A changed backbone or video therefore misses the cache instead of reading stale tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from model.backbone import Backbone
from model.backbone_run import PER_CLIP, BackboneRun
from model.config import ModelConfig
from model.synth.video_io import iter_video_frames

_CHUNK = 1 << 20  # bytes read at a time when hashing a video file


def default_cache_dir(data: Path) -> Path:
    """The token cache of a dataset: inside its directory (each backbone has a folder)."""
    return Path(data) / ".cache" / "tokens"


def file_hash(path: Path) -> str:
    """First 16 hex digits of the SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def weights_hash(module: torch.nn.Module) -> str:
    """First 16 hex digits of a SHA-256 over every parameter and buffer, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def backbone_identity(cfg: ModelConfig, backbone: Backbone) -> dict[str, object]:
    """What decides a video's tokens, as JSON-ready values."""
    return {
        "config": cfg.name,
        "backbone": cfg.backbone,
        "image_size": cfg.image_size,
        "grid": list(cfg.grid),
        "channels": cfg.backbone_channels,
        "fps": cfg.fps,
        "clip_frames": cfg.clip_frames,
        "weights": weights_hash(backbone.model),
    }


class TokenCache:
    """Backbone tokens of videos, computed on first use and read from disk afterwards."""

    def __init__(
        self, directory: Path, cfg: ModelConfig, backbone: Backbone, run: BackboneRun = PER_CLIP
    ) -> None:
        """``run``: how the backbone is called (e.g. in bf16, to measure what ingest's
        autocast costs in accuracy); it is part of the cache's key unless the default."""
        self.cfg = cfg
        self.backbone = backbone
        self.run = run
        self.identity = backbone_identity(cfg, backbone)
        if run != PER_CLIP:
            self.identity["run"] = run.identity()
        key = json.dumps(self.identity, sort_keys=True).encode()
        self.backbone_id = hashlib.sha256(key).hexdigest()[:16]
        self.directory = Path(directory) / self.backbone_id
        self.hits = 0
        self.misses = 0

    def path(self, video: Path) -> Path:
        """Where the tokens of ``video`` (as it is now on disk) live."""
        return self.directory / f"{Path(video).stem}-{file_hash(video)}.npy"

    def tokens(self, video: Path) -> Tensor:
        """Tokens ``(N, S, C)`` float32 of ``video`` at ``cfg.fps``, from the cache if present."""
        path = self.path(video)
        if path.is_file():
            self.hits += 1
            return torch.from_numpy(np.load(path, allow_pickle=False))
        self.misses += 1
        tokens = self.compute(video)
        self._store(path, tokens.numpy())
        return tokens

    @torch.no_grad()
    def compute(self, video: Path) -> Tensor:
        """Run the backbone over the video, one clip of ``cfg.clip_frames`` frames at a time."""
        device = next(self.backbone.parameters()).device
        parts: list[Tensor] = []
        clip: list[np.ndarray] = []
        for frame in iter_video_frames(Path(video), self.cfg.fps):
            clip.append(frame)
            if len(clip) == self.cfg.clip_frames:
                parts.append(self._encode(clip, device))
                clip = []
        if clip:
            parts.append(self._encode(clip, device))
        return torch.cat(parts)  # (N, S, C)

    def _encode(self, frames: list[np.ndarray], device: torch.device) -> Tensor:
        batch = torch.from_numpy(np.stack(frames)).to(device)  # (T, H, W, 3) uint8
        return self.run.encode(self.backbone, [batch])[0].cpu()  # (T, S, C)

    def _store(self, path: Path, tokens: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        about = self.directory / "backbone.json"
        if not about.is_file():
            _atomic_write(about, (json.dumps(self.identity, indent=2) + "\n").encode())
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")  # runs may share a cache
        np.save(tmp, tokens, allow_pickle=False)
        os.replace(tmp, path)  # a reader never sees half a file


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
