"""Readiness from probe results and the worker's progress, on a clock the test turns."""

from __future__ import annotations

from app.health import Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Worker:
    def __init__(self) -> None:
        self.done = 0
        self.waiting = False


def watched(clock: Clock, worker: Worker, *probes: str, **kw: float) -> Readiness:
    readiness = Readiness(stall_s=60.0, expected=probes, clock=clock, **kw)
    for probe in probes:
        readiness.record(probe, None)
    readiness.watch(progress=lambda: worker.done, pending=lambda: worker.waiting)
    return readiness


def test_not_ready_until_the_model_is_loaded_and_every_probe_passed() -> None:
    clock = Clock()
    readiness = Readiness(stall_s=60.0, expected=["database", "broker"], clock=clock)
    state = readiness.state()
    assert not state.ready
    assert any("starting" in p for p in state.problems)
    assert any("database check has not run" in p for p in state.problems)
    readiness.watch(progress=lambda: 0, pending=lambda: False)
    readiness.record("database", None)
    readiness.record("broker", "no Kafka broker accepts connections.")
    assert readiness.state().problems == ("no Kafka broker accepts connections.",)
    readiness.record("broker", None)
    assert readiness.state().ready


def test_a_probe_result_that_is_too_old_counts_as_a_failure() -> None:
    clock, worker = Clock(), Worker()
    readiness = watched(clock, worker, "database", stale_after_s=15.0)
    clock.now += 14
    assert readiness.state().ready
    clock.now += 2  # the check hangs: no news is not good news
    (problem,) = readiness.state().problems
    assert "database check has not finished for 16 s" in problem


def test_stalled_only_when_work_waits_and_nothing_moves_for_stall_s() -> None:
    clock, worker = Clock(), Worker()
    readiness = watched(clock, worker)
    clock.now += 3600  # a quiet hour with nothing to do: ready
    assert readiness.state().ready
    worker.waiting = True
    readiness.sample()
    clock.now += 59  # work that just arrived is not a stall, however long the quiet was
    assert readiness.state().ready
    clock.now += 2
    (problem,) = readiness.state().problems
    assert problem.startswith("stalled") and "61 s" in problem
    worker.done += 1  # it moved on: ready again, and the count starts over
    assert readiness.state().ready
    clock.now += 59
    assert readiness.state().ready
    worker.waiting = False
    clock.now += 600
    assert readiness.state().ready
