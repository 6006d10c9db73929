"""Two camera publishers of one session, running side by side as two processes, into the
real broker; the ingest worker combines them into one memory on PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.integration.conftest import ingest_until_idle

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_two_camera_processes_make_one_memory_with_nothing_dead_lettered(
    kafka_pg_settings,
    synth_videos,
    side_by_side_memory,
    stored_memory,
    cartmem_process,
    tmp_path: Path,
) -> None:
    # both declare the session's cameras, so neither runs ahead alone or ends the session
    # before the other has begun; the publishers run as fast as they can, so one may be a
    # whole video ahead of the other: ingest waits for it (a camera far behind is tested in
    # test_cameras.py)
    settings = dataclasses.replace(kafka_pg_settings, camera_skew_s=120.0)
    front, basket = synth_videos[0], synth_videos[2]
    publishers = [
        cartmem_process(
            settings,
            "publish",
            str(video),
            "--session",
            "cart-7",
            "--camera",
            camera,
            "--cameras",
            "front,basket",
            "--chunk-seconds",
            seconds,
            log=tmp_path / f"{camera}.log",
        )
        for video, camera, seconds in ((front, "front", "2"), (basket, "basket", "3"))
    ]
    for process in publishers:
        assert process.wait(timeout=240) == 0, (tmp_path / "front.log").read_text()
    stats = ingest_until_idle(settings)
    assert (stats.dead_letters, stats.duplicates) == (0, 0)

    memory, snap = stored_memory(settings, "cart-7")
    assert snap.status == "closed" and snap.losses == () and snap.seq_gaps == ()
    assert set(snap.end_info["cameras"]) == {"front", "basket"}
    # slots in the declared order, whichever camera's message reached the topic first
    both = side_by_side_memory(front, basket)
    assert memory.equal(both)
    assert snap.frames_seen == int(both.frames_seen[0])
