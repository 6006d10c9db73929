"""What a reading reaches with the model's moves, the annotation's, and surer naming."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from app.bench.reading_limits import (
    annotated_moves,
    boosted,
    direction_auc,
    main,
    matched_moves,
    read_moments,
    session_candidates,
    session_moves,
)
from app.reconcile.episodes import SETTINGS, Settings, episode_candidates
from app.reconcile.move_odds import Odds, log_odds
from app.reconcile.moves import Moment, renamed

ZEROS = [0.0] * 10


def _steps(put: list[float], take_out: list[float] | None = None) -> dict:
    return {
        "fps": 1.0,
        "take_from_shelf": ZEROS,
        "put_in_cart": put,
        "inspect": ZEROS,
        "return_to_shelf": ZEROS,
        "take_out_of_cart": take_out or ZEROS,
    }


def _session(a_at_its_put: float) -> dict:
    """A put at 2 s (B's answer echoes it) and B's put at 6 s; both bought."""
    put_a, put_b = [0.0] * 10, [0.0] * 10
    put_a[2], put_b[2] = a_at_its_put, 0.6 - a_at_its_put / 2
    put_b[6] = 0.9
    return {
        "video_id": "v",
        "basket": {"A": 1, "B": 1},
        "spans": [["put_in_cart", "A", 2.0, 3.0], ["put_in_cart", "B", 6.0, 7.0]],
        "steps": {"A": _steps(put_a), "B": _steps(put_b)},
    }


def test_annotated_moves_take_each_products_peak_over_the_move() -> None:
    moments = annotated_moves(_session(0.3))
    assert [(m.change, m.start, m.end) for m in moments] == [(1, 2, 3), (1, 6, 7)]
    assert moments[0].peaks.tolist() == pytest.approx([0.3, 0.45])


def test_a_boost_raises_the_named_product_and_keeps_shares() -> None:
    m = Moment(+1, 2, 3, np.array([0.3, 0.45]))
    raised = boosted(m, 0, 1.0)
    assert int(raised.peaks.argmax()) == 0  # 0.3 e > 0.45
    assert raised.peaks.sum() == pytest.approx(1.0)
    assert int(boosted(m, 0, 0.0).peaks.argmax()) == 1


def test_moments_match_annotated_moves_of_their_direction_within_a_step() -> None:
    session = _session(0.6)
    moments = [
        Moment(+1, 3, 4, np.ones(2)),  # overlaps A's put within a step
        Moment(-1, 6, 7, np.ones(2)),  # a take-out where B was put: spurious
        Moment(+1, 6, 8, np.ones(2)),  # B's put
        Moment(+1, 6, 7, np.ones(2)),  # B's put again: already matched, spurious
    ]
    assert matched_moves(session, moments) == [0, None, 1, None]


def test_the_cli_counts_flags_and_moves_and_names_an_unknown_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([_session(0.6)] * 3))
    assert main(["--answers", str(answers), "--moves", "annotation,steps", "--margins", "0"]) == 0
    confusion, *lines = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    # each put spans one whole step, read as a put in each of the three trips
    assert confusion["step_confusion"]["put_in_cart"]["put_in_cart"] == 6
    assert sum(confusion["step_confusion"]["put_in_cart"].values()) == 6
    assert [(x["moves"], x["reading"]) for x in lines] == [
        (moves, reading)
        for moves in ("annotation", "steps")
        for reading in ("alone", "scans-explain", "scans-assign")
    ]
    for line in lines:  # every move seen and named: each trip's one flag is its planted item
        assert line["sessions"] == 3 and line["moved_product_top1"] == 1.0
        assert line["recall"] == 1.0 and line["false_flags_per_session"] == 0.0
        assert (line["moves_found"], line["moves_missed"], line["moves_spurious"]) == (6, 0, 0)
    # the model names B at A's put; raising the true product's answer by a nat fixes it
    answers.write_text(json.dumps([_session(0.3)] * 3))
    main(["--answers", str(answers), "--moves", "annotation", "--boost", "0,1", "--margins", "0"])
    _, *lines = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    plain = {x["reading"]: x for x in lines if x["boost"] == 0.0}
    sure = {x["reading"]: x for x in lines if x["boost"] == 1.0}
    assert plain["alone"]["moved_product_top1"] == 0.5
    # read alone, B's answer takes A's put: B over its scan where A was bought, A under
    assert plain["alone"]["false_flags_per_session"] > 0.0
    for line in sure.values():
        assert line["moved_product_top1"] == 1.0
        assert line["recall"] == 1.0 and line["false_flags_per_session"] == 0.0
    with pytest.raises(SystemExit):
        main(["--answers", str(answers), "--moves", "frames"])
    assert "--moves frames" in capsys.readouterr().err


def test_episode_settings_reach_the_episode_reading_and_bad_ones_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = _session(0.6)
    stiff = Settings(switch=50.0)  # a path that never leaves idle counts no move
    assert session_moves(session, "episodes", stiff) == []
    read = session_moves(session, "annotation", stiff)
    assert [(m.start, m.end) for m in read] == [(m.start, m.end) for m in annotated_moves(session)]
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([session]))
    text = json.dumps({"switch": 50.0, "bias": dict(SETTINGS.bias)})
    main(["--answers", str(answers), "--moves", "episodes", "--episode-settings", text])
    _, *lines = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    assert {(x["moves_found"], x["moves_missed"]) for x in lines} == {(0, 2)}
    with pytest.raises(SystemExit):
        main(["--answers", str(answers), "--episode-settings", '{"switch": 1, "bias": {}}'])
    assert "a bias for each of" in capsys.readouterr().err


def _mirrored_session(take_out_at_take_out: float) -> dict:
    """A put at 1-3 s and a take-out at 5-7 s of A; the put answer is 0.5 at both, the
    take-out answer 0.1 at the put and ``take_out_at_take_out`` at the take-out."""
    put, take_out = [0.0] * 10, [0.0] * 10
    put[1:3], put[5:7] = [0.5] * 2, [0.5] * 2
    take_out[1:3], take_out[5:7] = [0.1] * 2, [take_out_at_take_out] * 2
    return {
        "video_id": "v",
        "basket": {},
        "spans": [["put_in_cart", "A", 1.0, 3.0], ["take_out_of_cart", "A", 5.0, 7.0]],
        "steps": {"A": _steps(put, take_out)},
    }


def test_direction_auc_tells_a_model_that_sees_the_direction_from_one_that_does_not() -> None:
    # the put answer wins at every step of both, yet the ratio still tells them apart
    assert direction_auc([_mirrored_session(0.3)])["take_out_of_cart/put_in_cart"] == 1.0
    # the same answers at both: no sign of the direction
    assert direction_auc([_mirrored_session(0.1)])["take_out_of_cart/put_in_cart"] == 0.5
    # no annotated take or return: nothing to tell apart
    assert direction_auc([_mirrored_session(0.3)])["return_to_shelf/take_from_shelf"] is None


def test_candidates_carry_log_odds_and_only_the_likely_moves_are_taken_as_moves() -> None:
    # A is taken and put in the cart; B is taken and ends back on the shelf, its end read
    # as a return (0.7) more than a put (0.5)
    def answers(**runs: tuple[int, int, float]) -> dict:
        out = _steps([0.02] * 12) | {
            a: [0.02] * 12
            for a in ("take_from_shelf", "inspect", "return_to_shelf", "take_out_of_cart")
        }
        for activity, (start, end, value) in runs.items():
            out[activity] = [value if start <= t < end else 0.02 for t in range(12)]
        return out

    session = {
        "steps": {
            "A": answers(take_from_shelf=(1, 3, 0.9), put_in_cart=(3, 5, 0.8)),
            "B": answers(
                take_from_shelf=(6, 8, 0.9), put_in_cart=(8, 10, 0.5), return_to_shelf=(8, 10, 0.7)
            ),
        }
    }
    moments, odds = session_candidates(session, "candidates")
    candidates = episode_candidates(session["steps"])
    assert odds is not None and odds.tolist() == log_odds(candidates).tolist()
    ends = {(m.start, m.end): o for m, o in zip(moments, odds, strict=True) if m.change > 0}
    assert set(ends) == {(3, 5), (8, 10)}
    assert ends[(3, 5)] > 0 > ends[(8, 10)]  # B's end is a candidate, but more likely no move
    taken = session_moves(session, "candidates")
    assert [(m.change, m.start, m.end) for m in taken] == [(1, 3, 5)]
    assert session_candidates(session, "episodes")[1] is None
    # the cart band: a band that changed only around A's end makes B's end even less
    # likely a move and A's more, with odds that read it
    cells = np.zeros((12, 2, 3, 3))
    cells[5:] = 0.5
    cart_odds = Odds(intercept=-1.0, slope=1.0, counted=0.5, cart=4.0, put=0.0)
    _, plain = session_candidates(session, "candidates", odds=cart_odds)
    _, read = session_candidates(session, "candidates", odds=cart_odds, cells=cells)
    assert plain is not None and read is not None
    for m, without, with_band in zip(moments, plain, read, strict=True):
        extra = 4.0 * np.sqrt(0.5) if (m.change, m.start) == (+1, 3) else 0.0
        assert with_band == pytest.approx(without + extra)
    # a pair's odds read each candidate's odds from its models' answers together too: where
    # they see B's end as a put, it becomes a move; odds that read them need them
    pair_odds = Odds(intercept=-1.0, slope=0.0, counted=0.0, naming=2.0)
    both = session["steps"] | {
        "B": answers(take_from_shelf=(6, 8, 0.9), put_in_cart=(8, 10, 0.9)),
    }
    _, paired = session_candidates(session, "candidates", odds=pair_odds, naming=both)
    assert paired is not None
    ends = {(m.start, m.end): o for m, o in zip(moments, paired, strict=True) if m.change > 0}
    assert ends[(8, 10)] > 0
    with pytest.raises(ValueError, match="only one model gave"):
        session_candidates(session, "candidates", odds=pair_odds)
    # the pixels' votes, added to every moment's log answers, can name another product
    votes = np.tile([0.0, 9.0], (len(moments), 1))
    voted, _, _ = read_moments(session, "candidates", evidence=votes)
    assert [int(np.argmax(m.peaks)) for m in voted] == [1] * len(moments)


def test_the_odds_decide_which_candidates_are_moves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = _session(0.6)
    for sku, start in (("A", 1), ("B", 5)):  # each put ends a take from the shelf
        session["steps"][sku]["take_from_shelf"] = [
            0.9 if start <= t < start + 1 else 0.0 for t in range(10)
        ]
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([session] * 2))
    found = {}
    for name, odds in (("sure", Odds(50.0, 0.0, 0.0)), ("none", Odds(-50.0, 0.0, 0.0))):
        args = ["--answers", str(answers), "--moves", "candidates", "--margins", "0"]
        assert main([*args, "--odds", json.dumps(asdict(odds))]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()[1:]]
        found[name] = lines[0]["moves_found"], lines[0]["moves_spurious"]
    # taking every candidate finds both puts and the takes besides; taking none finds none
    assert found["sure"][0] == 4 and found["sure"][1] > 0
    assert found["none"] == (0, 0)
    with pytest.raises(SystemExit):
        main(["--answers", str(answers), "--moves", "candidates", "--odds", "{}"])
    assert "the odds must be" in capsys.readouterr().err


def test_another_models_answers_can_name_the_moves_the_first_one_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the first model finds both puts but names B at A's put; the second names A there
    confused, sure = _session(0.3), _session(0.6)
    moment = Moment(+1, 2, 3, np.array([0.3, 0.45]))
    assert renamed(moment, sure["steps"]).peaks.tolist() == [0.6, 0.3]
    answers, naming = tmp_path / "answers.json", tmp_path / "naming.json"
    answers.write_text(json.dumps([confused] * 3))
    naming.write_text(json.dumps([sure] * 3))
    args = ["--answers", str(answers), "--moves", "annotation", "--margins", "0"]
    main(args)
    alone = [json.loads(x) for x in capsys.readouterr().out.splitlines()[1:]]
    main([*args, "--naming", str(naming)])
    named = [json.loads(x) for x in capsys.readouterr().out.splitlines()[1:]]
    assert alone[0]["moved_product_top1"] == 0.5 and named[0]["moved_product_top1"] == 1.0
    assert named[0]["false_flags_per_session"] == 0.0 < alone[0]["false_flags_per_session"]
    naming.write_text(json.dumps([{**sure, "video_id": "w"}]))
    with pytest.raises(SystemExit):
        main([*args, "--naming", str(naming)])
    assert "no answers name the products of v" in capsys.readouterr().err


def test_the_cart_bands_pictures_need_the_videos_and_the_candidates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([_session(0.6)]))
    for extra, said in (
        (["--moves", "candidates"], "give --data"),
        (["--moves", "episodes", "--data", str(tmp_path)], "--moves candidates"),
    ):
        with pytest.raises(SystemExit):
            main(["--answers", str(answers), "--cart-naming", "0.25", *extra])
        assert said in capsys.readouterr().err


def test_a_sessions_candidates_are_read_once_for_every_boost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.bench.reading_limits as limits

    calls = []
    real = limits.session_candidates

    def counted(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(limits, "session_candidates", counted)
    session = _session(0.6)
    known: dict = {}
    first = limits.read_moments(session, "candidates", known=known)
    again = limits.read_moments(session, "candidates", known=known)
    assert calls == ["candidates"] and list(known) == [("v", "candidates")]
    assert [m.start for m in first[0]] == [m.start for m in again[0]]
    limits.read_moments(session, "episodes", known=known)
    limits.read_moments(session, "episodes")  # nothing kept without a dict
    assert calls == ["candidates", "episodes", "episodes"]
