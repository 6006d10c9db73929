"""Calibration of activity probabilities: a known case, the network applying it, the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model import ActivityPrediction, ActivityQuery, LongVMNet, ModelConfig
from model.calibration import Calibration, expected_calibration_error, fit, logits_of, main


def _known_case(n: int = 40_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits that are over-confident by 2x and shifted by 0.5: the truth is
    ``P(y = 1) = sigmoid(0.5 * logit - 0.5)``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, n)
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-(0.5 * logits - 0.5)))).astype(float)
    return logits, labels


def test_fit_recovers_the_map_of_a_known_miscalibration() -> None:
    logits, labels = _known_case()
    calibration = fit(logits, labels)
    assert calibration.scale == pytest.approx(0.5, abs=0.03)
    assert calibration.bias == pytest.approx(-0.5, abs=0.05)
    before = expected_calibration_error(Calibration().apply(logits), labels)
    after = expected_calibration_error(calibration.apply(logits), labels)
    assert before > 0.05  # the raw sigmoid is visibly off...
    assert after < 0.015  # ...and the fitted map means what it says


def test_the_map_keeps_every_ranking_and_identity_is_the_raw_sigmoid() -> None:
    logits, _ = _known_case(seed=1)
    mapped = Calibration(1.7, -0.3).apply(logits)
    assert np.array_equal(np.argsort(mapped, kind="stable"), np.argsort(logits, kind="stable"))
    assert np.allclose(logits_of(Calibration().apply(logits[:100])), logits[:100], atol=1e-6)


def test_fit_refuses_answers_of_one_class_only() -> None:
    with pytest.raises(ValueError, match="both present and absent"):
        fit(np.array([0.1, 2.0, -1.0]), np.ones(3))


def test_the_network_answers_through_its_configs_calibration(small_cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    net = LongVMNet(small_cfg).eval()
    tokens = torch.randn(1, 12, small_cfg.tokens_per_frame, small_cfg.backbone_channels)
    memory = None
    for first in range(0, 12, small_cfg.clip_frames):
        memory = net.write_tokens(memory, tokens[:, first : first + small_cfg.clip_frames])
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    queries = [ActivityQuery(0, image, 0, 12)]
    (raw,) = net.answer(memory, queries)
    net.cfg = dataclasses.replace(small_cfg, activity_logit_scale=2.0, activity_logit_bias=-1.0)
    (calibrated,) = net.answer(memory, queries)
    assert isinstance(raw, ActivityPrediction) and isinstance(calibrated, ActivityPrediction)
    expected = Calibration(2.0, -1.0).apply(logits_of(raw.probabilities))
    assert np.allclose(calibrated.probabilities, expected, atol=1e-5)
    assert raw.steps is not None and calibrated.steps is not None
    assert np.allclose(
        calibrated.steps, Calibration(2.0, -1.0).apply(logits_of(raw.steps)), atol=1e-5
    )
    # the window is still the maximum of its steps, and the ranking of activities is the same
    assert np.allclose(calibrated.steps.max(axis=0), calibrated.probabilities, atol=1e-6)
    assert list(np.argsort(raw.probabilities)) == list(np.argsort(calibrated.probabilities))


def test_calibrate_command_writes_a_checkpoint_with_the_fitted_map(
    small_dataset: Path, small_cfg: ModelConfig, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    LongVMNet(small_cfg).save(tmp_path / "run")
    assert main(
        ["--data", str(small_dataset), "--checkpoint", str(tmp_path / "run"),
         "--out", str(tmp_path / "calibrated"), "--split", "test"]
    ) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    assert record["answers"] > 0 and record["scale"] > 0
    assert record["ece_after"] <= record["ece_before"] + 1e-9
    loaded = LongVMNet.load(tmp_path / "calibrated")
    assert loaded.cfg.activity_logit_scale == pytest.approx(record["scale"], abs=1e-5)
    assert loaded.cfg.activity_logit_bias == pytest.approx(record["bias"], abs=1e-5)
    assert (
        dataclasses.replace(loaded.cfg, activity_logit_scale=1.0, activity_logit_bias=0.0)
        == small_cfg
    )
