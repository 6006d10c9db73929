"""The capacity model's arithmetic against hand-computed values (the quick run's files:
``test_bench.py``)."""

import pytest
import torch

from app.bench import capacity_model as cm
from model import Memory, ModelConfig

# the ingest benchmark's session: 60 s at 1 FPS in 4 s chunks, clips of 16, a memory
# stored every 4 clips
SHAPE = cm.SessionShape(
    chunks=15, memory_frames=60, decoded_frames=75, clip_frames=16, save_clips=4
)
SIZES = cm.Bytes(memory=1000, frame=10, thumbnail=1.0)
FOREVER = 1e12  # a commit interval no run reaches: the final commit only


def test_paper_memory_bytes_and_sessions_per_device_are_exact() -> None:
    paper = ModelConfig.preset("paper")
    # m x C tokens, int64 time and cell indices, a bool mask per token, one int64 count
    assert Memory.nbytes_per_session(paper) == 5880 * 768 * 4 + 5880 * 17 + 8 == 18_163_328
    assert Memory.nbytes_per_session(paper, torch.float16) == 9_131_648
    # (139 GiB - 16 GiB) / 18,163,328 B = 7,271.3
    assert cm.sessions_held(139 * cm.GIB, 16 * cm.GIB, 18_163_328) == 7_271
    assert cm.sessions_held(139 * cm.GIB, 16 * cm.GIB, 9_131_648) == 14_462
    assert cm.sessions_held(cm.GIB, 2 * cm.GIB, 1) == 0


def test_one_session_committed_once_stores_memory_held_frame_and_thumbnails() -> None:
    s = cm.simulate(SHAPE, 1, SIZES, loop_records=64, policy=cm.EveryRecords(FOREVER))
    assert len(s.rounds) == 1 and s.records == 17
    # three full clips batched alone, then the last 12 frames when the session ends
    assert s.write_calls == [(1, 16), (1, 16), (1, 16), (1, 12)]
    only = s.rounds[0]
    assert (only.memory_saves, only.frames_stored, only.held_stored) == (1, 0, 1)
    assert s.commit_bytes == 1000 + 10 + 60 * 1.0


def test_commit_after_every_record_stores_each_frame_once() -> None:
    s = cm.simulate(SHAPE, 1, SIZES, loop_records=1, policy=cm.EveryRecords(1))
    assert len(s.rounds) == 17  # start, 15 chunks, end
    assert sum(r.frames_stored for r in s.rounds) == 60
    assert sum(r.held_stored for r in s.rounds) == 16  # every commit after the first frame
    assert sum(r.memory_saves for r in s.rounds) == 1  # 4 clips: stored at the end only
    assert s.commit_bytes == 60 * 10 + 16 * 10 + 1000 + 60


def test_the_memory_is_stored_every_save_clips_clips_and_the_frames_it_holds_are_not() -> None:
    shape = cm.SessionShape(
        chunks=40, memory_frames=160, decoded_frames=200, clip_frames=16, save_clips=4
    )
    s = cm.simulate(shape, 1, SIZES, loop_records=1, policy=cm.EveryRecords(1))
    # clips 4 and 8 end on chunks 15 and 31: the memory is stored then, and at the end
    assert [i for i, r in enumerate(s.rounds) if r.memory_saves] == [16, 32, 41]
    # the 4 frames of chunks 15 and 31 are in the memory stored in the same commit
    assert sum(r.frames_stored for r in s.rounds) == 160 - 8


def test_interleaved_sessions_share_sampler_calls() -> None:
    s = cm.simulate(SHAPE, 2, SIZES, loop_records=2, policy=cm.EveryRecords(FOREVER))
    assert s.write_calls == [(2, 32)] * 3 + [(1, 12)] * 2
    assert s.commit_bytes == 2 * (1000 + 10 + 60)
    wide = cm.simulate(SHAPE, 256, SIZES, loop_records=64, policy=cm.EveryRecords(FOREVER))
    # each loop's 64 records finish 64 sessions' clips at once
    assert {b for b, f in wide.write_calls if f == 64 * 16} == {64}
    assert len(wide.write_calls) == 3 * 256 // 64 + 256


def test_predicted_rounds_follow_the_commit_interval() -> None:
    units = cm.UnitCosts(
        apply_s_per_record=0.01,
        write_s_per_call=0.0,
        write_s_per_session=0.0,
        write_s_per_frame=0.0,
        commit_s_per_round=0.0,
        commit_s_per_snapshot=0.0,
        commit_s_per_byte=0.0,
        other_s_per_run=0.0,
        other_s_per_record=0.0,
        decode_cpu_s_per_record=0.005,
        main_cpu_share=1.0,
    )
    p = cm.predict(units, SHAPE, SIZES, 64, loop_records=64, commit_interval_s=5.0, cores=2)
    # 64 x 17 records at 10 ms: 10.88 s, 100 records/s: commits after the loops that pass
    # 500 and 1000 records (512, 1024), then the final one
    assert p.seconds == pytest.approx(10.88)
    assert p.decoded_frames_per_second == pytest.approx(64 * 75 / 10.88)
    assert p.commit_rounds == 3
    assert p.decode_bound_s == pytest.approx((10.88 + 1088 * 0.005) / 2)


def test_least_squares_recovers_costs_and_keeps_them_non_negative() -> None:
    rows = [[1.0, b, 16.0 * b] for b in (1, 2, 4, 8)] + [[1.0, 1.0, 12.0]]
    times = [0.5 + 0.1 * r[1] + 0.01 * r[2] for r in rows]
    assert cm.least_squares(rows, times) == pytest.approx([0.5, 0.1, 0.01])
    falling = [1.0 - 0.1 * x for x in (1, 2, 3)]  # a negative slope is no cost
    assert cm.least_squares([[1.0, x] for x in (1, 2, 3)], falling) == pytest.approx([0.8, 0.0])


def _inputs(**changes: float) -> cm.DevicePlanInputs:
    values = dict(
        device_memory_bytes=139 * cm.GIB,
        reserved_bytes_estimate=16 * cm.GIB,
        memory_bytes_fp32=18_163_328,
        memory_bytes_fp16=9_131_648,
        backbone_frames_per_s=1200.0,
        sampler_clips_per_s=100.0,
        decode_cpu_s_per_source_frame=0.002,
        host_cores=16,
        camera_fps=15.0,
        memory_fps=1.0,
        clip_frames=120,
        save_clips=4,
        commit_interval_s=10.0,
        stored_frame_bytes=338_688,
        thumbnail_bytes_per_memory_frame=6000.0,
        chunk_seconds=4.0,
        apply_s_per_record=0.001,
        database_write_bytes_per_s_estimate=1e12,
    )
    return cm.DevicePlanInputs(**(values | changes))  # type: ignore[arg-type]  # all numbers


def test_checkpoint_bytes_per_session_follow_the_save_cadence() -> None:
    p = _inputs()
    rates = cm.checkpoint_bytes_per_session_s(p, p.memory_bytes_fp32)
    # a memory every 4 clips of 120 frames at 1 FPS: every 480 s
    assert rates["memory"] == pytest.approx(18_163_328 / 480)
    assert rates["frames"] == 338_688 and rates["held_frame"] == pytest.approx(33_868.8)
    replay = cm.replay_after_crash(p, 1000)
    assert replay["frames"] == 1000 * 480
    assert replay["backbone_s"] == pytest.approx(400.0) and replay["sampler_s"] == 40.0


def test_plan_names_what_saturates_first_and_shares_the_database() -> None:
    one = cm.plan(_inputs())
    bounds = one["bounds_sessions_per_worker"]
    assert bounds["decode_cpu"] == 533  # 16 / (0.002 s x 15 frames)
    assert bounds["backbone"] == 1200 and bounds["sampler"] == 12_000
    assert bounds["main_thread_records"] == 4000  # 1 / (1 ms x a record every 4 s)
    assert one["saturates_first"] == "decode_cpu" and one["sessions_per_worker"] == 533
    per_session = sum(cm.checkpoint_bytes_per_session_s(_inputs(), 18_163_328).values())
    database = _inputs(database_write_bytes_per_s_estimate=1000.5 * per_session)
    four = cm.divide(database, 4)
    assert four["sessions_total"] == 1000 and four["saturates_first"] == "database_writes"
    assert cm.divide(database, 1)["sessions_total"] == 533


def test_the_model_splits_writes_as_the_engine_does() -> None:
    import inspect

    from app.ingest import IngestEngine

    default = inspect.signature(cm.simulate).parameters["max_sessions_per_write"].default
    assert default == IngestEngine.max_sessions_per_write
    s = cm.simulate(
        SHAPE, 3, SIZES, loop_records=3, policy=cm.EveryRecords(FOREVER), max_sessions_per_write=2
    )
    # each loop finishes the three sessions' clips together: written two, then one
    assert s.write_calls == [(2, 32), (1, 16)] * 3 + [(1, 12)] * 3
