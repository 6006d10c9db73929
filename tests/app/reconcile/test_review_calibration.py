"""A store's flag calibration fitted on its staff's verdicts, and the command that prints it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from app.cli import main
from app.db import Database
from app.errors import InvalidInputError
from app.reconcile.flag_confidence import FLAG_CALIBRATION, FlagCalibration, flag_confidence
from app.reconcile.review_calibration import calibrate_from_reviews
from storage import reviews as review_store

#: a store whose flags are real less often than the validation trips' at every margin
STORE = FlagCalibration(intercept=-2.5, slope=1.0)


def _review(
    database: Database, session_id: str, sku: str, verdict: str, margin: float | None
) -> None:
    flag = {"kind": "not_scanned", "sku": sku, "expected": 1, "scanned": 0, "confidence": 0.3}
    if margin is not None:
        flag["margin"] = margin
    with database.session() as db:
        review_store.add_review(
            db,
            session_id=session_id,
            sku=sku,
            verdict=verdict,
            note=None if verdict == "confirmed" else "not in the cart",
            reviewer="ana",
            flag=flag,
            model_version="m",
        )


@pytest.fixture
def reviewed(database: Database, make_session) -> Database:
    """400 reviewed flags over 40 sessions, real as often as ``STORE`` says, and two flags of
    the windows reading (no margin)."""
    rng = np.random.default_rng(5)
    for s in range(40):
        session_id = f"s{s}"
        make_session(session_id)
        for k in range(10):
            margin = float(rng.exponential(2.0))
            real = rng.random() < flag_confidence(margin, STORE)
            _review(database, session_id, f"SKU-{k}", "confirmed" if real else "dismissed", margin)
    _review(database, "s0", "OLD-1", "confirmed", None)
    _review(database, "s1", "OLD-2", "dismissed", None)
    return database


def test_the_fit_finds_the_stores_own_calibration(reviewed: Database) -> None:
    result = calibrate_from_reviews(reviewed, FLAG_CALIBRATION)
    assert (result.flags, result.without_margin) == (400, 2)
    assert result.fitted.intercept == pytest.approx(STORE.intercept, abs=0.5)
    assert result.fitted.slope == pytest.approx(STORE.slope, abs=0.25)
    assert result.brier_fitted < result.brier_current
    assert result.setting == f"{result.fitted.intercept:.3f},{result.fitted.slope:.3f}"


def test_the_latest_verdict_of_a_flag_is_the_one_fitted(database: Database, make_session) -> None:
    make_session("s1")
    for k in range(4):
        _review(database, "s1", f"SKU-{k}", "confirmed", 1.0)
        _review(database, "s1", f"SKU-{k + 4}", "dismissed", 0.0)
    first = calibrate_from_reviews(database, FLAG_CALIBRATION, minimum=8)
    assert (first.flags, first.confirmed) == (8, 4)
    for k in range(4):  # staff change their minds on the confirmed ones
        _review(database, "s1", f"SKU-{k}", "dismissed", 1.0)
    _review(database, "s1", "SKU-4", "confirmed", 0.0)
    again = calibrate_from_reviews(database, FLAG_CALIBRATION, minimum=8)
    assert (again.flags, again.confirmed) == (8, 1)


def test_too_few_verdicts_or_only_one_kind_is_refused_in_a_sentence(
    database: Database, make_session
) -> None:
    make_session("s1")
    for k in range(5):
        _review(database, "s1", f"SKU-{k}", "dismissed", 0.5)
    with pytest.raises(InvalidInputError, match=r"5 reviewed flags have a margin.*at least 30"):
        calibrate_from_reviews(database, FLAG_CALIBRATION)
    with pytest.raises(InvalidInputError, match="all confirmed or all dismissed"):
        calibrate_from_reviews(database, FLAG_CALIBRATION, minimum=5)


def test_the_command_prints_the_setting_and_the_setting_is_used(
    reviewed: Database, tmp_path: Path
) -> None:
    env = {"CARTMEM_DATA_DIR": str(tmp_path / "data"), "CARTMEM_DATABASE_URL": ""}
    runner = CliRunner()
    done = runner.invoke(main, ["reviews", "calibrate", "--json"], env=env)
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert (result["flags"], result["without_margin"]) == (400, 2)
    assert result["current"] == {
        "intercept": FLAG_CALIBRATION.intercept,
        "slope": FLAG_CALIBRATION.slope,
    }
    setting = result["setting"].split("=", 1)[1]
    # with the setting applied, the calibration in use is the fitted one
    applied = runner.invoke(
        main,
        ["reviews", "calibrate", "--json"],
        env={**env, "CARTMEM_RECONCILE_FLAG_CALIBRATION": setting},
    )
    assert json.loads(applied.output)["current"] == pytest.approx(
        {k: round(v, 3) for k, v in result["fitted"].items()}
    )
    human = runner.invoke(main, ["reviews", "calibrate"], env=env)
    assert f"CARTMEM_RECONCILE_FLAG_CALIBRATION={setting}" in human.output
    refused = runner.invoke(main, ["reviews", "calibrate", "--min-flags", "1000"], env=env)
    assert refused.exit_code == 1 and "at least 1000" in refused.output
