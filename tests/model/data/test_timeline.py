"""Seconds ↔ memory steps."""

from __future__ import annotations

from model.data.timeline import nearest_step, seconds_to_steps, steps_to_seconds


def test_an_interval_covers_the_steps_whose_instant_lies_inside() -> None:
    assert seconds_to_steps(3.6, 7.2, 1.0, 100) == (4, 8)  # instants 4, 5, 6, 7
    assert seconds_to_steps(4.0, 8.0, 1.0, 100) == (4, 8)  # start included, end excluded
    assert seconds_to_steps(3.6, 7.2, 2.0, 100) == (8, 15)  # 4.0, 4.5, ..., 7.0


def test_intervals_are_clipped_to_the_video_and_never_empty() -> None:
    assert seconds_to_steps(95.0, 120.0, 1.0, 100) == (95, 100)
    assert seconds_to_steps(4.2, 4.8, 1.0, 100) == (5, 6)  # between instants: the nearest
    assert seconds_to_steps(4.2, 4.4, 1.0, 100) == (4, 5)
    assert seconds_to_steps(99.5, 99.9, 1.0, 100) == (99, 100)


def test_float_noise_on_the_grid_does_not_move_an_edge() -> None:
    assert seconds_to_steps(2.0000000001, 5.9999999999, 1.0, 100) == (2, 6)


def test_steps_read_back_as_seconds_around_their_instants() -> None:
    assert steps_to_seconds(4, 8, 1.0) == (3.5, 7.5)
    assert steps_to_seconds(8, 15, 2.0) == (3.75, 7.25)


def test_nearest_step_rounds_halves_up() -> None:
    assert nearest_step(37.4, 1.0) == 37
    assert nearest_step(37.5, 1.0) == 38
    assert nearest_step(37.6, 1.0) == 38
