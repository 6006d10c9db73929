"""How the frozen backbone is run at inference: clips of many sessions in one call, at what
precision, without a session's tokens depending on which sessions shared the call.

A convolution's or matrix product's rounding may change with the batch's *shape* (the
library picks another kernel or blocking), but not with the other rows' *contents* or a
row's position in a batch of the same shape. So every call here has one shape: the frames
of all clips, each clip preprocessed on its own (cameras differ in size), are cut into
micro-batches of exactly ``batch_frames`` frames, the last one padded with black frames.
A frame's tokens then depend on the frame and ``batch_frames`` alone: a session replayed
alone after a restart gets the tokens it got among hundreds.

``autocast`` runs the backbone in bf16/fp16 (tokens return as float32). It is as
deterministic as float32 at a fixed shape, so recovery stays bit-identical; what it costs
is drift from the float32 tokens, measured in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from model.backbone import Backbone
from model.errors import ConfigError

#: ``autocast`` choices and the dtype each runs the backbone in.
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "off": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class BackboneRun:
    """``batch_frames``: frames per backbone call (None: one call per clip, its own length);
    ``autocast``: ``off``, ``bf16`` or ``fp16``."""

    batch_frames: int | None = None
    autocast: str = "off"

    def __post_init__(self) -> None:
        if self.batch_frames is not None and self.batch_frames <= 0:
            raise ConfigError(f"batch_frames must be positive, got {self.batch_frames}.")
        if self.autocast not in AUTOCAST_DTYPES:
            raise ConfigError(
                f"autocast must be one of {', '.join(AUTOCAST_DTYPES)}, got {self.autocast!r}."
            )

    def identity(self) -> dict[str, object]:
        """What, besides the backbone and the video, decides the tokens (for caches)."""
        return {"batch_frames": self.batch_frames, "autocast": self.autocast}

    def encode(self, backbone: Backbone, clips: Sequence[Tensor]) -> list[Tensor]:
        """Tokens ``(T_i, S, C)`` float32 of each RGB uint8 clip ``(T_i, H_i, W_i, 3)``."""
        if not clips:
            return []
        with torch.no_grad(), self._precision(backbone):
            if self.batch_frames is None:
                return [backbone(clip).float() for clip in clips]
            tokens = torch.cat(list(self._micro_batches(backbone, clips)))  # (N, S, C)
        return list(tokens.split([len(clip) for clip in clips]))  # (T_i, S, C) each

    def _micro_batches(self, backbone: Backbone, clips: Sequence[Tensor]) -> Iterator[Tensor]:
        """Float32 tokens of the clips' frames, ``batch_frames`` frames per backbone call.

        Frames are preprocessed a clip at a time as the calls need them (a thousand
        sessions' preprocessed frames at once would be gigabytes); the last call is padded
        with black frames, which yield no tokens.
        """
        step = self.batch_frames
        assert step is not None
        waiting: list[Tensor] = []  # preprocessed frames (n, 3, s, s) not yet run
        held = 0
        for clip in clips:
            waiting.append(backbone.preprocess(clip))
            held += len(clip)
            while held >= step:
                frames = torch.cat(waiting)  # (held, 3, s, s)
                yield self._call(backbone, frames[:step])  # (step, S, C)
                waiting, held = [frames[step:]], held - step
        if held:
            frames = torch.cat(waiting)
            black = backbone.preprocess(
                torch.zeros(1, 1, 1, 3, dtype=torch.uint8, device=frames.device)
            ).expand(step - held, -1, -1, -1)  # (step - held, 3, s, s)
            yield self._call(backbone, torch.cat([frames, black]))[:held]

    @staticmethod
    def _call(backbone: Backbone, frames: Tensor) -> Tensor:
        """Float32 tokens ``(batch_frames, S, C)`` of one micro-batch.

        ``preprocess`` gives NCHW, which ``torch.cat`` keeps; checked, since a convolution
        rounds differently in NHWC, and the layout, like the shape, must not depend on
        which clips share the call.
        """
        assert frames.is_contiguous(), "backbone micro-batches are NCHW-contiguous"
        return backbone.tokens(frames).float()

    def _precision(self, backbone: Backbone) -> contextlib.AbstractContextManager[object]:
        dtype = AUTOCAST_DTYPES[self.autocast]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(backbone.mean.device.type, dtype=dtype)


#: One backbone call per clip in float32: what training, evaluation and the token cache use.
PER_CLIP = BackboneRun()
