"""The offline decoder comparison: flags and identification from hand-made per-step answers."""

import json
from pathlib import Path

import pytest

from app.bench.reconcile_decode import (
    averaged,
    event_sources,
    flag_rates,
    identification,
    main,
    reliability,
    score,
)


def _answer(put: list[float], n: int = 12) -> dict:
    series = put + [0.0] * (n - len(put))
    zeros = [0.0] * n
    return {
        "fps": 1.0,
        "take_from_shelf": zeros,
        "put_in_cart": series,
        "inspect": zeros,
        "return_to_shelf": zeros,
        "take_out_of_cart": zeros,
    }


def _session() -> dict:
    # A is put in at 2-3 s and is the planted (unscanned) item; B was never handled, but its
    # answer echoes A's put, weaker; C's answer stays quiet
    return {
        "video_id": "v",
        "basket": {"A": 1},
        "spans": [("put_in_cart", "A", 2.0, 4.0)],
        "steps": {
            "A": _answer([0, 0, 0.9, 0.8]),
            "B": _answer([0, 0, 0.6, 0.3]),
            "C": _answer([0, 0, 0.2]),
        },
    }


def test_independent_decoding_flags_the_echo_and_one_product_explains_it_away() -> None:
    independent = score([_session()], "independent")
    assert independent["recall"] == 1.0 and independent["precision"] == 0.5
    assert independent["false_flags_by_kind"] == {"not_scanned": 1}  # B, never taken
    one = score([_session()], "one-product")
    assert one["recall"] == 1.0 and one["precision"] == 1.0
    assert one["false_flags_per_session"] == 0.0
    repaired = score([_session()], "scan-repair")  # B's echo is a moment's runner-up only
    assert repaired["recall"] == 1.0 and repaired["precision"] == 1.0


def test_averaged_answers_are_the_mean_of_two_models_per_step() -> None:
    other = _session()
    other["steps"]["B"] = _answer([0, 0, 0.2, 0.1])
    mean = averaged([_session()], [other])[0]["steps"]
    assert mean["B"]["put_in_cart"][:4] == pytest.approx([0, 0, 0.4, 0.2])
    assert mean["A"] == _session()["steps"]["A"]
    # the geometric mean: a model sure that B was not handled at 2 s (0.01 against 0.64)
    # pulls the average down to 0.08, where the mean would leave 0.33
    other["steps"]["B"] = _answer([0, 0, 0.01, 0.1])
    first = _session()
    first["steps"]["B"] = _answer([0, 0, 0.64, 0.4])
    geometric = averaged([first], [other], geometric=True)[0]["steps"]
    assert geometric["B"]["put_in_cart"][:4] == pytest.approx([0, 0, 0.08, 0.2])
    other["video_id"] = "w"
    with pytest.raises(ValueError, match="cannot be averaged"):
        averaged([_session()], [other])


def test_three_models_average_by_the_cube_root_of_their_product() -> None:
    second, third = _session(), _session()
    first = _session()
    first["steps"]["B"] = _answer([0, 0, 0.8, 0.5])
    second["steps"]["B"] = _answer([0, 0, 0.4, 0.5])
    third["steps"]["B"] = _answer([0, 0, 0.025, 0.5])
    # one model sure that B was not handled at 2 s: the cube root of 0.008 is 0.2, where
    # the mean would leave 0.41
    geometric = averaged([first], [second], [third], geometric=True)[0]["steps"]
    assert geometric["B"]["put_in_cart"][:4] == pytest.approx([0, 0, 0.2, 0.5])
    mean = averaged([first], [second], [third])[0]["steps"]
    assert mean["B"]["put_in_cart"][2] == pytest.approx(1.225 / 3)
    third["video_id"] = "w"
    with pytest.raises(ValueError, match="cannot be averaged"):
        averaged([first], [second], [third])


def test_the_cli_keeps_the_geometric_average_and_refuses_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _session(), _session()
    second["steps"]["B"] = _answer([0, 0, 0.04, 0.1])
    (tmp_path / "a.json").write_text(json.dumps([first]))
    (tmp_path / "b.json").write_text(json.dumps([second]))
    kept = tmp_path / "e.json"
    args = ["--from-answers", str(tmp_path / "a.json"), "--average-with", str(tmp_path / "b.json")]
    assert main([*args, "--geometric", "--keep-average", str(kept)]) == 0
    (average,) = json.loads(kept.read_text())
    expected = averaged([first], [second], geometric=True)[0]
    assert average["steps"] == expected["steps"] and average["steps"]["B"] != first["steps"]["B"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--from-answers", str(tmp_path / "a.json"), "--geometric"])
    assert "need --average-with" in capsys.readouterr().err


def test_identification_ranks_each_products_own_answer_at_its_moment() -> None:
    found = identification([_session()])["put_in_cart"]
    assert found["moments"] == 1
    assert found["top1"] == 1.0 and found["top3"] == 1.0  # A peaks above B and C at 2-4 s
    assert found["reaches_threshold"] == 1.0
    session = _session()
    session["steps"]["A"] = _answer([0, 0, 0.5])  # now B's echo is the stronger one
    found = identification([session])["put_in_cart"]
    assert found["top1"] == 0.0 and found["top3"] == 1.0


def test_event_sources_name_what_each_counted_event_is() -> None:
    found = event_sources([_session()], "independent")["put_in_cart"]
    assert found == {  # A's put is A's span; B's echo lies on A's span: a look-alike
        "true": 1, "twice": 0, "look_alike": 1, "other_activity": 0, "nothing": 0, "missed": 0
    }  # fmt: skip
    assert event_sources([_session()], "one-product")["put_in_cart"]["look_alike"] == 0

    # A is seen put in at 2 s and again at 13 s, two events (further apart than the merge
    # gap); C is put in at 2-4 s but its answer stays quiet
    session = _session()
    session["steps"] = {
        "A": _answer([0, 0, 0.9] + [0.0] * 10 + [0.8], n=16),
        "B": _answer([], n=16),
        "C": _answer([0, 0, 0.2], n=16),
    }
    session["spans"] = [("put_in_cart", "A", 2.0, 4.0), ("put_in_cart", "C", 2.0, 4.0)]
    found = event_sources([session], "independent")["put_in_cart"]
    assert (found["true"], found["nothing"], found["missed"]) == (1, 1, 1)  # 13 s; C's put
    session["spans"].append(("inspect", "A", 12.0, 15.0))
    found = event_sources([session], "independent")["put_in_cart"]
    assert (found["nothing"], found["other_activity"]) == (0, 1)  # 13 s shows A inspected
    session["spans"] = [("put_in_cart", "A", 2.0, 12.0)]  # one slow put spans both events
    found = event_sources([session], "independent")["put_in_cart"]
    assert (found["true"], found["twice"], found["missed"]) == (1, 1, 0)


def test_reliability_bins_flags_by_confidence_and_counts_the_real_ones() -> None:
    # independent decoding flags A (the planted item, its put at 0.9) and B (A's echo, 0.6)
    bins = {tuple(b["confidence"]): b for b in reliability([_session()], "independent", seeds=2)}
    assert bins[(0.9, 1.0)] == {"confidence": [0.9, 1.0], "flags": 2, "real": 1.0}
    assert bins[(0.5, 0.7)] == {"confidence": [0.5, 0.7], "flags": 2, "real": 0.0}
    assert bins[(0.0, 0.5)]["flags"] == 0 and bins[(0.0, 0.5)]["real"] is None


def test_flag_rates_count_per_trip_and_per_flag() -> None:
    # three trips: the planted item flagged with one false flag, only false flags, nothing
    rates = flag_rates([[True, False], [False, False], []])
    assert rates == {
        "sessions": 3,
        "recall": pytest.approx(1 / 3),
        "precision": pytest.approx(1 / 4),
        "false_flags_per_session": pytest.approx(1.0),
    }
    assert flag_rates([[], []])["precision"] is None
    assert flag_rates([])["recall"] == 0.0
