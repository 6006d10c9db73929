"""The flag calibration benchmark: reliability tables, and a fit from kept answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.bench.flag_calibration import calibration_from_json, main, trip_flags
from app.reconcile.flag_confidence import FlagCalibration, reliability

LABELS = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")
STEPS = 40


def _answers(runs: list[tuple[str, int, int, float]], rest: float = 0.02) -> dict:
    answers = {label: [rest] * STEPS for label in LABELS}
    for activity, start, end, value in runs:
        answers[activity][start:end] = [value] * (end - start)
    return {"fps": 1.0, **answers}


def _session(video_id: str) -> dict:
    """A and B put in where the answers see it clearly; C bought too, its put unseen (its
    answers 0 everywhere, so that no other product's put explains its scan)."""
    return {
        "video_id": video_id,
        "basket": {"A": 1, "B": 1, "C": 1},
        "spans": [
            ["put_in_cart", "A", 5.0, 8.0],
            ["put_in_cart", "B", 25.0, 28.0],
            ["put_in_cart", "C", 33.0, 35.0],
        ],
        "steps": {
            "A": _answers([("take_from_shelf", 2, 5, 0.9), ("put_in_cart", 5, 8, 0.9)]),
            "B": _answers([("take_from_shelf", 22, 25, 0.9), ("put_in_cart", 25, 28, 0.9)]),
            "C": _answers([], rest=0.0),
        },
    }


def test_a_reliability_table_bins_flags_by_confidence() -> None:
    table = reliability([0.05, 0.15, 0.12, 0.95], [False, True, False, True])
    assert [b["confidence"] for b in table["bins"]] == [[0.0, 0.1], [0.1, 0.2], [0.9, 1.0]]
    assert [b["flags"] for b in table["bins"]] == [1, 2, 1]
    assert [b["real"] for b in table["bins"]] == [0.0, 0.5, 1.0]
    assert table["bins"][1]["mean_confidence"] == pytest.approx(0.135)
    assert table["brier"] == pytest.approx((0.05**2 + 0.85**2 + 0.12**2 + 0.05**2) / 4)
    assert (table["flags"], table["real"]) == (4, 2)
    assert reliability([1.0], [True])["bins"][0]["confidence"] == [0.9, 1.0]
    assert reliability([], [])["brier"] is None


def test_the_planted_item_is_a_real_flag_and_an_unseen_scanned_one_a_false_flag() -> None:
    flags, first = trip_flags([_session("v1"), _session("v2")], None, plantings=3)
    assert len(first) == 2
    real = [m for m, r in flags if r]
    false = [m for m, r in flags if not r]
    assert real and false
    # C was scanned and never seen moved; A or B, not scanned, was clearly put in
    assert min(real) > 1.0


def test_the_cli_fits_a_calibration_and_checks_the_ones_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([_session("v1"), _session("v2")]))
    given = '{"intercept": -1, "slope": 0.5}'
    figure = tmp_path / "reliability.png"
    argv = ["--answers", str(answers), "--plantings", "3", "--fit", "--calibration", given]
    assert main([*argv, "--plot", str(figure)]) == 0
    assert figure.stat().st_size > 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["plantings"] == 3 and lines[0]["band"] is False
    names = [line["name"] for line in lines[1:]]
    assert names == ["uncalibrated", "shipped", "given 1", "fitted"]
    by_name = {line["name"]: line for line in lines[1:]}
    assert (by_name["given 1"]["intercept"], by_name["given 1"]["slope"]) == (-1.0, 0.5)
    # fitted on these flags, the calibration fits them at least as well as any other
    assert by_name["fitted"]["log_loss"] <= min(line["log_loss"] for line in lines[1:]) + 1e-9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "in JSON"),
        ('{"intercept": 1}', "in JSON"),
        ('{"intercept": "x", "slope": 1}', "in JSON"),
        ('{"intercept": 1e999, "slope": 1}', "finite"),
    ],
)
def test_a_calibration_that_is_not_one_is_refused_in_a_sentence(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calibration_from_json(text)
    assert calibration_from_json('{"intercept": 1, "slope": 2}') == FlagCalibration(1.0, 2.0)


def test_the_cli_refuses_no_plantings(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([_session("v1")]))
    with pytest.raises(SystemExit):
        main(["--answers", str(answers), "--plantings", "0"])


def test_naming_answers_decide_whose_move_it_was_and_must_name_the_same_products(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--naming``: the moves from ``--answers``, each one's product and (as a model pair's
    answers are read) its odds of being a cart move from the others."""
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([_session("v1")]))
    argv = ["--answers", str(answers), "--plantings", "3"]
    same = tmp_path / "same.json"
    same.write_text(json.dumps([_session("v1")]))
    assert main([*argv, "--naming", str(same)]) == 0
    named = json.loads(capsys.readouterr().out.splitlines()[1])
    # naming answers that see nothing name no product surely: the same moves, other flags
    blind = _session("v1")
    blind["steps"] = {sku: _answers([], rest=0.3) for sku in blind["steps"]}
    (tmp_path / "blind.json").write_text(json.dumps([blind]))
    assert main([*argv, "--naming", str(tmp_path / "blind.json")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[1]) != named
    other = _session("v2")
    (tmp_path / "other.json").write_text(json.dumps([other]))
    with pytest.raises(SystemExit):
        main([*argv, "--naming", str(tmp_path / "other.json")])
    assert "no naming answers" in capsys.readouterr().err
