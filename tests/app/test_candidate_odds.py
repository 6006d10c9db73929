"""The log odds that a handling's end or start is a cart move: the fit and its use."""

import json
from pathlib import Path

import numpy as np
import pytest

from app.bench.candidate_odds import fit_odds, main
from app.reconcile.episodes import Candidate, episode_candidates, named_odds
from app.reconcile.move_odds import Odds, log_odds, odds_from_json
from app.reconcile.moves import Moment


def test_the_fit_recovers_the_coefficients_the_labels_were_drawn_with() -> None:
    rng = np.random.default_rng(0)
    odds = rng.normal(0.0, 2.0, 20_000)
    counted = rng.uniform(size=odds.size) < 0.4
    features = np.column_stack([np.ones(odds.size), odds, counted.astype(float)])
    truth = np.array([-1.0, 1.5, 2.0])
    labels = (rng.uniform(size=odds.size) < 1 / (1 + np.exp(-features @ truth))).astype(int)
    fitted = fit_odds(features, labels)
    assert [fitted.intercept, fitted.slope, fitted.counted] == pytest.approx(truth, abs=0.15)


def test_the_fit_needs_both_kinds() -> None:
    with pytest.raises(ValueError, match="both kinds"):
        fit_odds(np.ones((4, 3)), np.ones(4, dtype=int))


def test_log_odds_add_up_the_coefficients() -> None:
    moment = Moment(+1, 0, 2, np.array([0.5, 0.5]))
    candidates = [Candidate(moment, True, 1.0), Candidate(moment, False, -2.0)]
    got = log_odds(candidates, Odds(intercept=-1.0, slope=2.0, counted=3.0))
    assert got.tolist() == [-1.0 + 2.0 + 3.0, -1.0 - 4.0]


def _session(put_at_end: float) -> dict:
    """A take from the shelf at 1-3 s and an end at 3-5 s, annotated as a put."""

    def answers(**runs: tuple[int, int, float]) -> dict:
        out: dict = {"fps": 1.0}
        for a in ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf"):
            start, end, value = runs.get(a, (0, 0, 0.0))
            out[a] = [value if start <= t < end else 0.02 for t in range(8)]
        out["take_out_of_cart"] = [0.02] * 8
        return out

    steps = {"A": answers(take_from_shelf=(1, 3, 0.9), put_in_cart=(3, 5, put_at_end))}
    steps["A"]["return_to_shelf"][3:5] = [0.5, 0.5]
    return {"video_id": "v", "spans": [["put_in_cart", "A", 3.0, 5.0]], "steps": steps}


def test_the_cli_fits_kept_answers_and_says_when_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([_session(0.9), _session(0.3)] * 4))
    assert main(["--answers", str(answers)]) == 0
    line = json.loads(capsys.readouterr().out)
    # each session: the take (no move) and the end (the annotated put), counted or not
    assert (line["candidates"], line["moves"]) == (16, 8)
    # the stronger the cart answer against the shelf's, the likelier a move
    assert line["slope"] > 0
    answers.write_text(json.dumps([{**_session(0.9), "spans": []}]))
    with pytest.raises(SystemExit):
        main(["--answers", str(answers)])
    assert "both kinds" in capsys.readouterr().err


def test_odds_are_read_back_from_what_the_cli_prints_and_bad_ones_are_named() -> None:
    printed = json.dumps({"candidates": 9, "moves": 4, "intercept": -1, "slope": 2, "counted": 0.5})
    assert odds_from_json(printed) == Odds(intercept=-1.0, slope=2.0, counted=0.5)
    for bad in ('{"intercept": 1, "slope": 2}', "[1, 2, 3]", "odds", '{"intercept": "a"}'):
        with pytest.raises(ValueError, match="the odds must be"):
            odds_from_json(bad)


def test_the_cart_band_adds_to_the_log_odds_of_puts_and_take_outs_alike() -> None:
    put, take_out = Moment(+1, 0, 2, np.ones(2)), Moment(-1, 0, 2, np.ones(2))
    candidates = [Candidate(put, True, 1.0), Candidate(take_out, False, 1.0)]
    odds = Odds(intercept=-1.0, slope=2.0, counted=3.0, cart=4.0, put=-0.5)
    got = log_odds(candidates, odds, np.array([0.25, 0.0]))
    assert got.tolist() == [-1.0 + 2.0 + 3.0 + 4.0 * 0.5 - 0.5, -1.0 + 2.0]
    # without the band the cart coefficients are not read
    assert log_odds(candidates, odds).tolist() == [4.0, 1.0]
    with pytest.raises(ValueError, match="1 cart changes for 2 candidates"):
        log_odds(candidates, odds, np.array([0.1]))


def test_the_fit_with_the_cart_band_recovers_its_coefficients() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    features = np.column_stack(
        [
            np.ones(n),
            rng.normal(0.0, 2.0, n),
            rng.uniform(size=n) < 0.4,
            np.sqrt(rng.uniform(0.0, 0.8, n)),
            rng.uniform(size=n) < 0.5,
        ]
    ).astype(float)
    truth = np.array([-2.0, 1.5, 0.5, 5.0, -1.0])
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-features @ truth))).astype(int)
    fitted = fit_odds(features, labels)
    got = [fitted.intercept, fitted.slope, fitted.counted, fitted.cart, fitted.put]
    assert got == pytest.approx(truth, abs=0.3)
    assert odds_from_json(json.dumps(fitted.__dict__)) == fitted


def test_a_pairs_odds_read_each_candidates_odds_from_its_answers_together() -> None:
    put = Moment(+1, 0, 2, np.ones(2))
    candidates = [Candidate(put, True, 1.0, naming=-3.0), Candidate(put, False, 1.0, naming=2.0)]
    odds = Odds(intercept=-1.0, slope=2.0, counted=3.0, cart=4.0, put=-0.5, naming=0.5)
    got = log_odds(candidates, odds, np.array([0.25, 0.0]))
    assert got.tolist() == [-1.0 + 2.0 + 3.0 + 2.0 - 0.5 - 1.5, -1.0 + 2.0 - 0.5 + 1.0]
    assert log_odds(candidates, odds).tolist() == [-1.0 + 2.0 + 3.0 - 1.5, -1.0 + 2.0 + 1.0]
    with pytest.raises(ValueError, match="only one model gave"):
        log_odds([Candidate(put, True, 1.0)], odds)
    # odds without a naming coefficient do not need the pair's answers
    assert log_odds([Candidate(put, True, 1.0)], Odds(0.0, 1.0, 0.0)).tolist() == [1.0]


def test_named_odds_read_the_same_runs_from_the_other_answers() -> None:
    lead = _session(0.9)["steps"]
    other = _session(0.02)["steps"]  # the other answers see a return at the lead's put
    (end,) = [c for c in episode_candidates(lead) if c.moment.change > 0 and c.counted]
    (named,) = named_odds([end], other)
    assert (named.moment, named.counted, named.odds) == (end.moment, end.counted, end.odds)
    assert named.naming is not None and named.naming < 0 < end.odds


def test_the_cli_fits_the_pairs_coefficient_from_other_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the lead's answers are alike for a move and not; the naming answers tell them apart
    sessions, naming = [], []
    for k in range(12):
        moved = k % 2 == 0
        s = _session(0.5)
        s["video_id"] = f"v{k}"
        s["spans"] = s["spans"] if moved else []
        sessions.append(s)
        naming.append({**_session(0.9 if moved else 0.02), "video_id": f"v{k}"})
    answers, names = tmp_path / "answers.json", tmp_path / "naming.json"
    answers.write_text(json.dumps(sessions))
    names.write_text(json.dumps(naming))
    assert main(["--answers", str(answers), "--naming", str(names)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["naming"] > 1.0 and (line["cart"], line["put"]) == (0.0, 0.0)
    names.write_text(json.dumps(naming[:3]))
    with pytest.raises(SystemExit):
        main(["--answers", str(answers), "--naming", str(names)])
    assert "no naming answers for the products of v3" in capsys.readouterr().err
