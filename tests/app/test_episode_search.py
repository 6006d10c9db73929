"""The episode reading's settings searched on hand-made kept answers."""

import json
from pathlib import Path

import numpy as np

from app.bench.episode_search import main, moment_errors, search
from app.reconcile.episodes import Settings

ACTIVITIES = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")


def _session() -> dict:
    """One product taken at 2 s and put in the cart at 5 s, both annotated."""
    answers = {a: np.full(20, 0.02) for a in ACTIVITIES}
    answers["take_from_shelf"][2:5] = 0.9
    answers["put_in_cart"][5:8] = 0.9
    return {
        "video_id": "v",
        "basket": {"A": 1},
        "spans": [["take_from_shelf", "A", 2.0, 5.0], ["put_in_cart", "A", 5.0, 8.0]],
        "steps": {"A": {"fps": 1.0, **{a: v.tolist() for a, v in answers.items()}}},
    }


def test_moment_errors_count_a_missed_move_and_a_found_one() -> None:
    sessions = [_session()]
    assert vars(moment_errors(sessions, Settings())) == {"found": 1, "missed": 0, "spurious": 0}
    # a path that never leaves idle misses the put
    missed = moment_errors(sessions, Settings(switch=50.0))
    assert (missed.found, missed.missed, missed.errors) == (0, 1, 1)


def test_the_search_leaves_a_setting_that_misses_moves() -> None:
    best, tried = search([_session()], [50.0, 0.25], [2.0], rounds=1, start=Settings(switch=50))
    assert best.switch == 0.25
    assert {s.switch for s, _ in tried} == {50.0, 0.25}


def test_the_command_prints_every_setting_tried_and_the_chosen_one_last(
    tmp_path: Path, capsys
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([_session()]))
    assert (
        main(["--answers", str(answers), "--switch", "0.25,50", "--bias", "2", "--rounds", "1"])
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["chosen"]["switch"] == 0.25 and lines[-1]["errors"] == 0
    assert any(line.get("switch") == 50.0 and line["missed"] == 1 for line in lines[:-1])
