"""Long activity windows read from one decoding of their session per product
(``model.timelines``): the same answers as each window decoded on its own, up to float
rounding, with each session's timeline for a product decoded once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import LongVMNet, ModelConfig
from model.object_token_cache import image_key
from model.prepared import PreparedMemory
from model.queries import (
    ActivityPrediction,
    ActivityQuery,
    ObjectQuery,
    Prediction,
    Query,
    TimePrediction,
    TimeQuery,
)
from model.timelines import Timelines

FRAMES = 80  # per session; a window of 20 steps or more (a quarter) reads the timeline
TOLERANCE = 1e-5


def _net(**changes: object) -> LongVMNet:
    torch.manual_seed(7)
    settings: dict[str, object] = {
        "query_fusion": "decoder",
        "decoder_self_radius": 2,
        "memory_size": 96,
        "time_answers": "activity_steps",
    }
    cfg = ModelConfig.preset("tiny", **(settings | changes))
    return LongVMNet(cfg, pretrained_backbone=False).eval()


@pytest.fixture(scope="module")
def net() -> LongVMNet:
    net = _net()
    assert net._timeline_margin() == 4  # 2 decoder layers x radius 2
    return net


@pytest.fixture(scope="module")
def written(net: LongVMNet) -> PreparedMemory:
    frames = np.random.default_rng(0).integers(0, 256, (2, FRAMES, 48, 64, 3), dtype=np.uint8)
    return net.prepare(net.populate(frames))


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(count)]


def _questions() -> list[Query]:
    a, b = _images(2)
    return [
        ActivityQuery(0, a, 0, FRAMES),  # the whole session
        ActivityQuery(0, a, 3, 50),
        ActivityQuery(0, a, 30, FRAMES),  # ends where the session does
        ActivityQuery(0, b, 10, 31),  # 21 steps: just long enough
        ActivityQuery(1, a, 17, 70),
        ActivityQuery(0, a, 30, 34),  # short: decoded on its own
        ObjectQuery(1, 2, 10, 60),
        TimeQuery(0, 3, a, 5, 60),  # answered from activity steps: shared too
        TimeQuery(1, 1, b, 0, FRAMES),
    ]


def _fresh(prepared: PreparedMemory) -> PreparedMemory:
    """The same prepared memory with no timeline kept."""
    return PreparedMemory(prepared.memory, prepared.model_key)


def _assert_close(ours: list[Prediction], theirs: list[Prediction]) -> None:
    for mine, direct in zip(ours, theirs, strict=True):
        assert type(mine) is type(direct)
        if isinstance(mine, ActivityPrediction):
            assert isinstance(direct, ActivityPrediction)
            assert mine.steps is not None and direct.steps is not None
            assert mine.steps.shape == direct.steps.shape
            assert np.abs(mine.steps - direct.steps).max() <= TOLERANCE
            assert np.abs(mine.probabilities - direct.probabilities).max() <= TOLERANCE
        elif isinstance(mine, TimePrediction):
            assert isinstance(direct, TimePrediction)
            assert (mine.start, mine.end) == (direct.start, direct.end)
            assert abs(mine.score - direct.score) <= TOLERANCE


def test_long_windows_from_the_timeline_answer_as_decoded_alone(
    net: LongVMNet, written: PreparedMemory
) -> None:
    questions = _questions()
    direct = net.answer(_fresh(written), questions, share_timelines=False)
    prepared = _fresh(written)
    shared = net.answer(prepared, questions)
    _assert_close(shared, direct)
    # session 0 asked long windows about both products, session 1 about both too
    assert [len(t) for t in prepared.timelines] == [2, 2]
    whole = shared[0]  # [0, FRAMES): no edge of its own, it is the timeline
    assert isinstance(whole, ActivityPrediction)
    assert np.array_equal(whole.steps, prepared.timelines[0].get(image_key(_images(1)[0])))


def test_a_margin_one_step_short_changes_the_answers(
    net: LongVMNet, written: PreparedMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above can fail: edges one step too narrow answer differently."""
    questions = _questions()[:5]
    direct = net.answer(_fresh(written), questions, share_timelines=False)
    monkeypatch.setattr(net, "_timeline_margin", lambda: 3)
    shared = net.answer(_fresh(written), questions)
    gaps = [
        np.abs(s.steps - d.steps).max()
        for s, d in zip(shared, direct, strict=True)
        if isinstance(s, ActivityPrediction) and isinstance(d, ActivityPrediction)
        and s.steps is not None and d.steps is not None
    ]  # fmt: skip
    assert max(gaps) > 100 * TOLERANCE


def test_a_sessions_timeline_is_decoded_once_per_product(
    net: LongVMNet, written: PreparedMemory
) -> None:
    lengths: list[int] = []  # steps of each batch the decoder ran
    hook = net.encoder_decoder.register_forward_pre_hook(
        lambda _m, args: lengths.append(int(args[1].shape[1]))
    )
    try:
        prepared = _fresh(written)
        (image,) = _images(1)
        net.answer(prepared, [ActivityQuery(0, image, 0, 60), ActivityQuery(0, image, 5, 75)])
        first = list(lengths)
        lengths.clear()
        net.answer(prepared, [ActivityQuery(0, image, 20, 79)])
    finally:
        hook.remove()
    assert first == [FRAMES, 8]  # the timeline alone, then both windows' edges (2M = 8)
    assert lengths == [8]  # the later window: its two edges only


def test_a_kept_timeline_gives_the_answer_a_new_one_does(
    net: LongVMNet, written: PreparedMemory
) -> None:
    (image,) = _images(1)
    asked = ActivityQuery(1, image, 12, 77)
    [new] = net.answer(_fresh(written), [asked])
    prepared = _fresh(written)
    net.answer(prepared, [ActivityQuery(1, image, 0, 40)])  # decodes session 1's timeline
    [kept] = net.answer(prepared, [asked])
    assert isinstance(new, ActivityPrediction) and isinstance(kept, ActivityPrediction)
    assert new.steps is not None and kept.steps is not None
    assert np.array_equal(new.steps, kept.steps)  # bit for bit: the timeline is decoded alone


def test_a_batch_made_by_cat_keeps_timelines_with_each_session(
    net: LongVMNet, written: PreparedMemory
) -> None:
    one, two = (PreparedMemory(written.memory[i], written.model_key) for i in (0, 1))
    batch = PreparedMemory.cat([two, one])
    (image,) = _images(1)
    net.answer(batch, [ActivityQuery(1, image, 0, 50)])  # row 1 of the batch: session 0
    assert (len(one.timelines[0]), len(two.timelines[0])) == (1, 0)
    with pytest.raises(ValueError, match="one timeline store per session"):
        PreparedMemory(written.memory, written.model_key, one.timelines)


def test_no_timeline_when_every_step_reads_the_whole_window(make_frames) -> None:
    net = _net(decoder_self_radius=-1)
    assert net._timeline_margin() == 0
    prepared = net.prepare(net.populate(make_frames(1, 40)))
    (image,) = _images(1)
    net.answer(prepared, [ActivityQuery(0, image, 0, 40), ActivityQuery(0, image, 2, 39)])
    assert len(prepared.timelines[0]) == 0


def test_windows_past_the_frames_seen_are_decoded_on_their_own(
    net: LongVMNet, written: PreparedMemory
) -> None:
    (image,) = _images(1)
    prepared = _fresh(written)
    net.answer(prepared, [ActivityQuery(0, image, 10, FRAMES + 20)])
    assert len(prepared.timelines[0]) == 0


def test_timelines_forget_the_least_recently_used() -> None:
    kept = Timelines(capacity=2)
    for key in (b"a", b"b"):
        kept.put(key, np.zeros((3, 5), np.float32))
    assert kept.get(b"a") is not None  # now the most recent
    kept.put(b"c", np.ones((3, 5), np.float32))
    assert (kept.get(b"a") is not None, kept.get(b"b"), len(kept)) == (True, None, 2)


def test_the_papers_early_fusion_answers_alike_from_timelines(make_frames) -> None:
    net = _net(query_fusion="encoder", memory_size=64)
    prepared = net.prepare(net.populate(make_frames(2, 48)))
    a, b = _images(2)
    questions: list[Query] = [
        ActivityQuery(0, a, 0, 48), ActivityQuery(0, a, 5, 40), ActivityQuery(1, b, 11, 47),
        TimeQuery(1, 2, b, 0, 30),
    ]  # fmt: skip
    direct = net.answer(PreparedMemory(prepared.memory, prepared.model_key), questions,
                        share_timelines=False)  # fmt: skip
    _assert_close(net.answer(prepared, questions), direct)
    assert [len(t) for t in prepared.timelines] == [1, 1]


def test_more_products_in_one_call_than_a_session_keeps(
    net: LongVMNet, written: PreparedMemory
) -> None:
    """The timelines a call decodes serve its own questions even when the session's store
    forgets them at once (it keeps one here)."""
    prepared = PreparedMemory(written.memory, written.model_key, (Timelines(1), Timelines(1)))
    questions: list[Query] = [ActivityQuery(0, image, 3, 70) for image in _images(3)]
    direct = net.answer(_fresh(written), questions, share_timelines=False)
    _assert_close(net.answer(prepared, questions), direct)
    assert len(prepared.timelines[0]) == 1


def test_every_products_timeline_reads_the_first_self_attention_of_its_window_once() -> None:
    """A whole-session timeline's first decoder self-attention depends on its window
    alone: computed for the first product, read back for the next, with the bits of
    computing it again; new weights in that layer are not answered from the old ones."""
    net = _net()
    frames = np.random.default_rng(0).integers(0, 256, (1, FRAMES, 48, 64, 3), dtype=np.uint8)
    prepared = net.prepare(net.populate(frames))
    a, b = _images(2)
    whole = [ActivityQuery(0, a, 0, FRAMES), ActivityQuery(0, b, 0, FRAMES)]
    cache = net.encoder_decoder.decoder.first_steps
    first = net.answer(prepared, whole[:1])[0]
    second = net.answer(prepared, whole[1:])[0]
    assert cache.hits == 1
    net.encoder_decoder.decoder.first_steps = type(cache)(capacity=0)  # computed every time
    again = net.answer(net.prepare(net.populate(frames)), whole)
    for kept, computed in zip((first, second), again, strict=True):
        assert isinstance(kept, ActivityPrediction) and isinstance(computed, ActivityPrediction)
        assert np.array_equal(kept.steps, computed.steps)

    net.encoder_decoder.decoder.first_steps = cache
    with torch.no_grad():
        net.encoder_decoder.decoder.layers[0].self_attention.query.weight.mul_(0.5)
    changed = net.answer(net.prepare(net.populate(frames)), whole[:1])[0]
    assert cache.hits == 1  # the new weights missed
    memory = net.populate(frames)
    with torch.enable_grad():  # gradients wanted: nothing kept is read
        net.forward(memory, whole[:1])
    assert cache.hits == 1
    assert isinstance(changed, ActivityPrediction)
    assert not np.array_equal(changed.steps, first.steps)
