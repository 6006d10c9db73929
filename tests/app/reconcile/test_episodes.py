"""Cart moves read as whole handlings, on hand-made per-step answers."""

import json

import numpy as np
import pytest

from app.reconcile.episodes import (
    SETTINGS,
    Settings,
    episode_candidates,
    episode_moments,
    episode_path,
    settings_from_json,
)

ACTIVITIES = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")


def _answers(**runs: list[tuple[int, int, float]]) -> dict[str, np.ndarray]:
    """Per activity, ``(start, end, answer)`` runs over 20 steps, 0.02 elsewhere."""
    out = {a: np.full(20, 0.02) for a in ACTIVITIES}
    for activity, spans in runs.items():
        for start, end, value in spans:
            out[activity][start:end] = value
    return out


def _steps(answers_by_product: dict[str, dict[str, np.ndarray]]) -> dict:
    return {
        sku: {"fps": 1.0, **{a: v.tolist() for a, v in answers.items()}}
        for sku, answers in answers_by_product.items()
    }


def test_a_handling_is_read_whole_take_look_put() -> None:
    answers = _answers(
        take_from_shelf=[(2, 5, 0.9)], inspect=[(5, 8, 0.8)], put_in_cart=[(8, 10, 0.9)]
    )
    path = episode_path(answers)
    assert path[:2] == ["idle", "idle"] and path[-1] == "idle"
    assert path[2:10] == ["take"] * 3 + ["look"] * 3 + ["put"] * 2


def test_a_return_the_model_also_calls_a_put_is_not_counted() -> None:
    # after a take and a look, the last steps score 0.5 as a put and 0.8 as a return;
    # read on its own the put answer would count a put (it is over scan_repair's 0.3)
    answers = _answers(
        take_from_shelf=[(2, 5, 0.9)],
        inspect=[(5, 8, 0.8)],
        put_in_cart=[(8, 11, 0.5)],
        return_to_shelf=[(8, 11, 0.8)],
    )
    steps = _steps({"A": answers})
    assert episode_moments(steps) == []
    # and where the put is the stronger, one put is counted where the handling ends
    answers["return_to_shelf"][8:11] = 0.3
    (moment,) = episode_moments(_steps({"A": answers}))
    assert (moment.change, moment.start, moment.end) == (1, 8, 11)


def test_a_take_out_starts_a_handling_and_a_put_back_after_a_look_restores_it() -> None:
    answers = _answers(
        take_out_of_cart=[(1, 4, 0.9)], inspect=[(4, 7, 0.9)], put_in_cart=[(7, 9, 0.9)]
    )
    moments = episode_moments(_steps({"A": answers}))
    assert sorted((m.change, m.start) for m in moments) == [(-1, 1), (1, 7)]


def test_each_moment_keeps_every_products_peak_over_its_steps() -> None:
    a = _answers(take_from_shelf=[(2, 5, 0.9)], put_in_cart=[(5, 8, 0.9)])
    b = _answers(take_from_shelf=[(2, 5, 0.3)], put_in_cart=[(5, 8, 0.4)])
    (moment,) = episode_moments(_steps({"A": a, "B": b}))
    assert moment.peaks.tolist() == [0.9, 0.4]
    assert episode_moments({}) == []


def test_settings_change_the_path_a_high_switch_price_keeps_it_idle() -> None:
    answers = _answers(take_from_shelf=[(2, 5, 0.9)], put_in_cart=[(5, 8, 0.9)])
    assert "put" in episode_path(answers)
    stiff = Settings(switch=50.0)
    assert set(episode_path(answers, stiff)) == {"idle"}
    # no activity wins against idle when every one of them is 10 nats down
    shy = Settings(bias=dict.fromkeys(SETTINGS.bias, -10.0))
    assert episode_moments(_steps({"A": answers}), shy) == []


def test_settings_are_read_from_json_and_a_wrong_shape_is_named() -> None:
    text = '{"switch": 0.5, "bias": ' + json.dumps(dict(SETTINGS.bias)) + "}"
    assert settings_from_json(text) == Settings(0.5, dict(SETTINGS.bias))
    for bad in ("[]", "{}", '{"switch": "x", "bias": {}}', '{"switch": 1, "bias": {"take": 1}}'):
        with pytest.raises(ValueError, match="episode settings"):
            settings_from_json(bad)


def test_candidates_keep_the_handlings_ends_and_starts_the_path_does_not_count() -> None:
    # a take, a look and an end the model reads as a return (0.8) more than a put (0.5)
    answers = _answers(
        take_from_shelf=[(2, 5, 0.9)],
        inspect=[(5, 8, 0.8)],
        put_in_cart=[(8, 11, 0.5)],
        return_to_shelf=[(8, 11, 0.8)],
    )
    steps = _steps({"A": answers, "B": _answers()})
    start, end = sorted(episode_candidates(steps), key=lambda c: c.moment.start)
    assert (start.moment.change, start.moment.start, start.moment.end) == (-1, 2, 5)
    assert (end.moment.change, end.moment.start, end.moment.end) == (1, 8, 11)
    assert not start.counted and not end.counted
    # the end's own odds: log(0.5 / 0.8) nats in favour of the cart; its peaks per product
    assert end.odds == pytest.approx(np.log(0.5 + 1e-3) - np.log(0.8 + 1e-3))
    assert end.moment.peaks.tolist() == [0.5, 0.02]
    assert start.odds == pytest.approx(np.log(0.02 + 1e-3) - np.log(0.9 + 1e-3))


def test_the_counted_moments_are_the_paths_runs_into_and_out_of_the_cart() -> None:
    rng = np.random.default_rng(3)
    steps = {
        sku: {"fps": 1.0, **{a: rng.uniform(0, 1, 60).round(2).tolist() for a in ACTIVITIES}}
        for sku in ("A", "B", "C")
    }
    answers = {a: np.array([steps[k][a] for k in steps]) for a in ACTIVITIES}  # (P, L) each
    path = episode_path({a: v.max(axis=0) for a, v in answers.items()})
    expected = []
    for change, states, activity in (
        (+1, ("put", "put_back"), "put_in_cart"),
        (-1, ("take_out",), "take_out_of_cart"),
    ):
        t = 0
        while t < len(path):
            if path[t] in states:
                end = t + 1
                while end < len(path) and path[end] == path[t]:
                    end += 1
                expected.append((change, t, end, answers[activity][:, t:end].max(axis=1)))
                t = end
            else:
                t += 1
    moments = episode_moments(steps)
    assert len(moments) > 2  # random answers hold moves of both directions
    assert {m.change for m in moments} == {+1, -1}
    assert [(m.change, m.start, m.end) for m in moments] == [e[:3] for e in expected]
    for moment, (*_, peaks) in zip(moments, expected, strict=True):
        assert np.array_equal(moment.peaks, peaks)
    counted = [c for c in episode_candidates(steps) if c.counted]
    assert len(counted) == len(moments)
