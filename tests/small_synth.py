"""The smallest synthetic dataset settings the tests draw with: 96 x 72 at 5 FPS, six SKUs,
query windows scaled to 30-second videos."""

from __future__ import annotations

from model.synth import QueryConfig, SynthConfig, VideoConfig


def small_synth_config(
    split: tuple[float, float, float] = (0.5, 0.0, 0.5), per_bucket: int = 4
) -> SynthConfig:
    return SynthConfig(
        num_skus=6,
        video=VideoConfig(width=96, height=72, fps=5),
        queries=QueryConfig(
            per_bucket=per_bucket,
            short_seconds=(4.0, 10.0),
            medium_seconds=(10.0, 20.0),
            long_seconds=(20.0, float("inf")),
        ),
        split=split,
    )
