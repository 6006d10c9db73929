"""SynthConfig validation and the activity labels shared with the model."""

from __future__ import annotations

import dataclasses
import json

import pytest

from model.synth import ACTIVITIES, ScriptConfig, SynthConfig, SynthConfigError, VideoConfig


def test_activity_labels_are_the_five_retail_actions_in_order() -> None:
    assert ACTIVITIES == (
        "take_from_shelf",
        "put_in_cart",
        "inspect",
        "return_to_shelf",
        "take_out_of_cart",
    )


def test_model_config_uses_the_same_labels() -> None:
    from model.config import ModelConfig

    assert tuple(ModelConfig.preset("tiny").activity_labels) == ACTIVITIES


@pytest.mark.parametrize(
    "change",
    [
        {"num_skus": 1},
        {"video": VideoConfig(width=191)},
        {"video": VideoConfig(fps=10, box_fps=3)},
        {"split": (0.5, 0.5)},
        {"script": ScriptConfig(episode_weights=(1.0, 1.0))},
        {"script": ScriptConfig(inspect_seconds=(5.0, 2.0))},
    ],
)
def test_rejects_settings_that_cannot_make_a_dataset(change: dict) -> None:
    with pytest.raises(SynthConfigError):
        dataclasses.replace(SynthConfig(), **change)


def test_config_serializes_to_strict_json() -> None:
    text = json.dumps(SynthConfig().to_dict(), allow_nan=False)
    assert json.loads(text)["queries"]["long_seconds"] == [120.0, None]
