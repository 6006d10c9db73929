"""Token standardisation: each backbone channel's statistics, and the projection using them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from model import ModelConfig
from model.channel_statistics import SPREAD_FLOOR, channel_statistics
from model.layers import TokenProjection


def _videos(channels: int = 8) -> list[torch.Tensor]:
    """Three videos of different lengths whose channels differ a thousandfold in spread."""
    g = torch.Generator().manual_seed(0)
    loudness = torch.logspace(-2, 1, channels)  # (C,)
    return [
        torch.randn(n, 3, channels, generator=g) * loudness + torch.arange(channels)
        for n in (2, 5, 9)
    ]


def test_statistics_are_the_mean_and_spread_over_every_token_of_every_video() -> None:
    videos = _videos()
    mean, std = channel_statistics(videos)
    rows = np.concatenate([v.reshape(-1, v.shape[-1]).numpy() for v in videos]).astype(np.float64)
    assert mean.dtype == std.dtype == torch.float32 and mean.shape == std.shape == (8,)
    np.testing.assert_allclose(mean.numpy(), rows.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std.numpy(), rows.std(axis=0, ddof=1), rtol=1e-5)


def test_a_channel_that_never_moves_gets_a_floored_spread_not_zero() -> None:
    videos = _videos()
    for video in videos:
        video[..., 2] = 7.0
    mean, std = channel_statistics(videos)
    assert mean[2] == pytest.approx(7.0)
    moving = torch.cat([std[:2], std[3:]])
    # the floor is a share of the median over all channels, the still one included
    assert std[2] == pytest.approx(SPREAD_FLOOR * float(std.median()), rel=1e-5)
    assert bool((moving > std[2]).all())


@pytest.mark.parametrize(
    "videos", [[], [torch.zeros(1, 1, 4)], [torch.ones(3, 2, 4)]], ids=["none", "one", "still"]
)
def test_statistics_of_too_few_or_still_tokens_are_refused(videos: list[torch.Tensor]) -> None:
    with pytest.raises(ValueError):
        channel_statistics(videos)


def _projections(tiny_cfg: ModelConfig) -> tuple[TokenProjection, TokenProjection]:
    """The same weights with and without standardisation."""
    torch.manual_seed(0)
    plain = TokenProjection(tiny_cfg)
    standardised = TokenProjection(dataclasses.replace(tiny_cfg, token_standardisation=True))
    standardised.load_state_dict(plain.state_dict(), strict=False)
    return plain, standardised


def test_the_projection_standardises_each_channel_before_its_layer_norm(
    tiny_cfg: ModelConfig,
) -> None:
    plain, standardised = _projections(tiny_cfg)
    channels = tiny_cfg.backbone_channels
    tokens = torch.randn(2, 5, channels)
    assert torch.equal(standardised(tokens), plain(tokens))  # the identity until fit
    mean, std = torch.randn(channels), torch.rand(channels) + 0.1
    standardised.set_channel_statistics(mean, std)
    torch.testing.assert_close(standardised(tokens), plain((tokens - mean) / std))
    assert not torch.allclose(standardised(tokens), plain(tokens), atol=1e-3)


def test_a_loud_channel_weighs_no_more_than_a_quiet_one_once_standardised(
    tiny_cfg: ModelConfig,
) -> None:
    """Scaling a channel's tokens changes a plain projection's output; scaled with its
    statistics it changes nothing after standardisation."""
    plain, standardised = _projections(tiny_cfg)
    channels = tiny_cfg.backbone_channels
    tokens = torch.randn(4, channels)
    std = torch.rand(channels) + 0.5
    standardised.set_channel_statistics(torch.zeros(channels), std)
    louder = torch.ones(channels)
    louder[:10] = 50.0  # ten channels fifty times louder
    before = standardised(tokens)
    standardised.set_channel_statistics(torch.zeros(channels), std * louder)
    torch.testing.assert_close(standardised(tokens * louder), before)
    assert not torch.allclose(plain(tokens * louder), plain(tokens), atol=1e-2)


def test_without_standardisation_the_projection_keeps_no_statistics(
    tiny_cfg: ModelConfig,
) -> None:
    """Checkpoints written before the option load as they were: no extra keys."""
    plain, standardised = _projections(tiny_cfg)
    assert set(plain.state_dict()) == {"norm.weight", "norm.bias", "linear.weight", "linear.bias"}
    assert set(standardised.state_dict()) - set(plain.state_dict()) == {
        "channel_mean",
        "channel_std",
    }
    channels = tiny_cfg.backbone_channels
    with pytest.raises(ValueError, match="without token_standardisation"):
        plain.set_channel_statistics(torch.zeros(channels), torch.ones(channels))


@pytest.mark.parametrize("bad", ["zero spread", "negative spread", "nan mean", "inf spread"])
def test_unusable_statistics_are_refused_and_the_old_ones_kept(
    tiny_cfg: ModelConfig, bad: str
) -> None:
    _, standardised = _projections(tiny_cfg)
    channels = tiny_cfg.backbone_channels
    mean, std = torch.zeros(channels), torch.ones(channels)
    if bad == "zero spread":
        std[3] = 0.0
    elif bad == "negative spread":
        std[3] = -1.0
    elif bad == "nan mean":
        mean[3] = float("nan")
    else:
        std[3] = float("inf")
    with pytest.raises(ValueError, match="finite with positive spreads"):
        standardised.set_channel_statistics(mean + 1.0, std * 2.0)
    assert torch.equal(standardised.channel_std, torch.ones(channels))
    assert torch.equal(standardised.channel_mean, torch.zeros(channels))
