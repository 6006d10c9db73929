"""The frozen image backbone: RGB uint8 frames in, one token per cell of its final grid out.

Any timm model works; its final feature map (``forward_features``) is the token grid, e.g.
``swinv2_cr_small_ns_224`` gives 768 channels x 7 x 7 = 49 tokens per 224 x 224 frame.
Stock weights come from a local file only (``pretrained_cfg_overlay=dict(file=...)``).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.data import resolve_data_config
from torch import Tensor, nn

from model.config import ModelConfig
from model.errors import ConfigError


def create_timm_backbone(name: str, weights_file: str | None) -> nn.Module:
    """A timm model without classifier; weights from ``weights_file`` or random init.

    ``pretrained_cfg_overlay=dict(file=...)`` makes timm read the local file (and drop the
    classifier keys) instead of fetching from a hub; ``checkpoint_path=`` would fail on the
    missing head with ``num_classes=0``.
    """
    if weights_file is not None and not Path(weights_file).is_file():
        raise ConfigError(f"Backbone weights file {weights_file} does not exist.")
    try:
        return timm.create_model(
            name,
            pretrained=weights_file is not None,
            pretrained_cfg_overlay=dict(file=weights_file) if weights_file else None,
            num_classes=0,
        )
    except RuntimeError as exc:  # timm raises RuntimeError for unknown names
        raise ConfigError(f"timm cannot build backbone {name!r}: {exc}") from None


class Backbone(nn.Module):
    """Frozen timm model that turns frames into tokens ``(N, S, C)``.

    Preprocessing follows timm's data config for the model (normalisation mean/std and
    interpolation) at ``cfg.image_size``. The whole frame is resized, never centre-cropped:
    answers (boxes) are in full-frame coordinates and every part of the frame may matter.
    """

    mean: Tensor  # buffers, registered in __init__
    std: Tensor

    def __init__(self, cfg: ModelConfig, *, load_weights: bool = True) -> None:
        super().__init__()
        weights = cfg.backbone_weights_file if load_weights else None
        self.model = create_timm_backbone(cfg.backbone, weights)
        size = cfg.image_size
        data_cfg = resolve_data_config({"input_size": (3, size, size)}, model=self.model)
        self.image_size = size
        interpolation = data_cfg.get("interpolation", "bilinear")
        self.interpolation = (
            interpolation if interpolation in ("bilinear", "bicubic") else "bilinear"
        )
        # Derived from timm, so not part of the checkpoint (persistent=False).
        self.register_buffer(
            "mean", torch.tensor(data_cfg["mean"]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(data_cfg["std"]).view(1, 3, 1, 1), persistent=False
        )
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        self.output_fmt = str(getattr(self.model, "output_fmt", "NCHW"))
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()
        self._check_output(cfg)

    def train(self, mode: bool = True) -> Backbone:
        """The backbone is frozen: its norm layers and dropout stay in inference mode."""
        super().train(mode)
        self.model.eval()
        return self

    def preprocess(self, frames: Tensor) -> Tensor:
        """RGB uint8 ``(N, H, W, 3)`` → normalised float ``(N, 3, s, s)``."""
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"Frames must be RGB uint8 (N, H, W, 3), got {tuple(frames.shape)} {frames.dtype}."
            )
        x = frames.to(self.mean.device).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode=self.interpolation,
                align_corners=False,
                antialias=True,
            )
        # NCHW whatever the path: a frame left unresized keeps the NHWC strides of the
        # permute, and a convolution rounds differently in the two layouts
        return ((x - self.mean) / self.std).contiguous()

    @torch.no_grad()
    def forward(self, frames: Tensor) -> Tensor:
        """RGB uint8 frames ``(N, H, W, 3)`` → tokens ``(N, S, C)`` in row-major grid order.

        Token ``s`` of a frame sits at grid cell ``(s // w', s % w')``: ``s`` is its
        spatial index.
        """
        return self.tokens(self.preprocess(frames))

    def tokens(self, x: Tensor) -> Tensor:
        """Tokens ``(N, S, C)`` of preprocessed frames ``x`` ``(N, 3, s, s)``."""
        return self._tokens(self.features(x))

    def features(self, x: Tensor) -> Tensor:
        """The timm model's final feature map of preprocessed frames ``x``."""
        return self.model.forward_features(x)  # type: ignore[operator]  # a timm method nn.Module does not declare

    def _tokens(self, features: Tensor) -> Tensor:
        if features.dim() == 3:  # ViT-like (N, prefix + S, C): drop class/register tokens
            return features[:, self.num_prefix_tokens :]
        if self.output_fmt == "NHWC":
            return features.flatten(1, 2)  # (N, H', W', C) -> (N, S, C)
        return features.flatten(2).transpose(1, 2)  # (N, C, H', W') -> (N, S, C)

    def _check_output(self, cfg: ModelConfig) -> None:
        """Fail at build time, not at the first write, when the config mismatches timm."""
        probe = torch.zeros(1, cfg.image_size, cfg.image_size, 3, dtype=torch.uint8)
        tokens = self(probe)
        if tokens.shape[1:] != (cfg.tokens_per_frame, cfg.backbone_channels):
            raise ConfigError(
                f"Backbone {cfg.backbone} at {cfg.image_size} px gives "
                f"{tokens.shape[1]} tokens of {tokens.shape[2]} channels per frame, but the "
                f"config says grid {cfg.grid} ({cfg.tokens_per_frame} tokens) of "
                f"{cfg.backbone_channels} channels."
            )
