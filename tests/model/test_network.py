import dataclasses

import numpy as np
import pytest
import torch

from model import (
    ActivityPrediction,
    ActivityQuery,
    ActivityTarget,
    LongVMNet,
    Memory,
    ModelConfig,
    ObjectPrediction,
    ObjectQuery,
    ObjectTarget,
    TimePrediction,
    TimeQuery,
    TimeTarget,
    loss_weights,
    query_losses,
    weighted_sum,
)
from model.resize import resize_checkpoint


@pytest.fixture(scope="module")
def memory(tiny_net: LongVMNet) -> Memory:
    """Three sessions: 40 frames each (the last clip partial)."""
    video = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 64, 3), dtype=np.uint8)
    return tiny_net.populate(video)


def _image(seed: int, h: int = 40, w: int = 30) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mixed_queries() -> list:
    return [
        ActivityQuery(0, _image(1), start=0, end=10),
        ObjectQuery(2, activity=1, start=5, end=12),
        TimeQuery(1, activity=4, object_image=_image(2, 64, 64), start=3, end=40),
        ActivityQuery(2, _image(3), start=30, end=31),
        ObjectQuery(0, activity=0, start=0, end=1),
        TimeQuery(0, activity=0, object_image=_image(1), start=0, end=2),
    ]


def test_populate_reads_the_video_once_into_m_tokens(tiny_net: LongVMNet, memory: Memory) -> None:
    cfg = tiny_net.cfg
    assert memory.tokens.shape == (3, cfg.memory_size, cfg.backbone_channels)
    assert memory.frames_seen.tolist() == [40, 40, 40]
    assert memory.valid.all() and memory.time_index.max() < 40


def test_populate_equals_clip_by_clip_writes(tiny_net: LongVMNet, make_frames) -> None:
    video = make_frames(2, 20)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[1, 18:] = False  # session 1 is two frames shorter
    step = tiny_net.write(None, video[:, :16])
    step = tiny_net.write(step, video[:, 16:], mask[:, 16:])
    whole = tiny_net.populate(video, mask)
    assert whole.equal(step)
    assert whole.frames_seen.tolist() == [20, 18]


def test_an_activity_answer_says_when_each_activity_happened(
    tiny_net: LongVMNet, memory: Memory
) -> None:
    short, whole = tiny_net.answer(
        memory, [ActivityQuery(0, _image(1), 3, 10), ActivityQuery(1, _image(2), 0, 40)]
    )
    for answer, steps in ((short, 7), (whole, 40)):
        assert answer.steps is not None
        assert answer.steps.shape == (steps, tiny_net.cfg.num_activities)
        # the window's answer is the maximum over its steps, to the bit
        assert np.array_equal(answer.steps.max(axis=0), answer.probabilities)


@pytest.mark.parametrize("radius", [1, -1])  # the tiny preset's time-local decoder; paper's
def test_answers_have_the_right_kinds_shapes_and_ranges(
    tiny_net: LongVMNet, memory: Memory, radius: int
) -> None:
    queries = _mixed_queries()
    if radius != tiny_net.cfg.decoder_time_radius:
        torch.manual_seed(0)
        tiny_net = LongVMNet(dataclasses.replace(tiny_net.cfg, decoder_time_radius=radius)).eval()
    answers = tiny_net.answer(memory, queries)
    assert [type(a) for a in answers] == [
        ActivityPrediction,
        ObjectPrediction,
        TimePrediction,
        ActivityPrediction,
        ObjectPrediction,
        TimePrediction,
    ]
    for query, answer in zip(queries, answers, strict=True):
        if isinstance(answer, ActivityPrediction):
            p = answer.probabilities
            assert p.shape == (tiny_net.cfg.num_activities,) and ((p > 0) & (p < 1)).all()
        elif isinstance(answer, ObjectPrediction):
            assert answer.boxes.shape == (query.end - query.start, 4)
            assert ((answer.boxes >= 0) & (answer.boxes <= 1)).all()
        else:
            assert query.start <= answer.start < answer.end <= query.end
            assert 0.0 < answer.score <= 1.0


def test_a_mixed_batch_answers_as_each_query_alone(tiny_net: LongVMNet, memory: Memory) -> None:
    queries = _mixed_queries()
    together = tiny_net.answer(memory, queries)
    for query, answer in zip(queries, together, strict=True):
        (alone,) = tiny_net.answer(memory, [query])
        if isinstance(alone, TimePrediction):
            assert (alone.start, alone.end) == (answer.start, answer.end)
        else:
            got = answer.probabilities if isinstance(alone, ActivityPrediction) else answer.boxes
            want = alone.probabilities if isinstance(alone, ActivityPrediction) else alone.boxes
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_answers_depend_on_the_session_and_the_object(tiny_net: LongVMNet, memory: Memory) -> None:
    a, b, c = tiny_net.answer(
        memory,
        [
            ActivityQuery(0, _image(1), 0, 10),
            ActivityQuery(1, _image(1), 0, 10),
            ActivityQuery(0, _image(2), 0, 10),
        ],
    )
    assert not np.allclose(a.probabilities, b.probabilities, atol=1e-6)
    assert not np.allclose(a.probabilities, c.probabilities, atol=1e-6)


def test_many_products_against_one_memory_encode_each_image_once(
    tiny_net: LongVMNet, memory: Memory
) -> None:
    calls: list[int] = []
    hook = tiny_net.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        images = [_image(s) for s in range(4)]
        queries = [ActivityQuery(0, images[i % 4].copy(), 0, 20) for i in range(40)]
        answers = tiny_net.answer(memory, queries, max_tokens=10 * 300)  # several batches
    finally:
        hook.remove()
    assert len(answers) == 40 and sum(calls) <= 4 * 4  # at most once per image per batch
    np.testing.assert_allclose(answers[0].probabilities, answers[4].probabilities, atol=1e-6)


def test_answers_work_from_a_float16_memory(tiny_net: LongVMNet, memory: Memory) -> None:
    (full,) = tiny_net.answer(memory, [ActivityQuery(1, _image(1), 0, 10)])
    (half,) = tiny_net.answer(memory.to(dtype=torch.float16), [ActivityQuery(1, _image(1), 0, 10)])
    np.testing.assert_allclose(full.probabilities, half.probabilities, atol=0.05)


def test_bad_queries_are_refused_with_a_reason(tiny_net: LongVMNet, memory: Memory) -> None:
    with pytest.raises(ValueError, match="start < end"):
        ActivityQuery(0, _image(1), 5, 5)
    with pytest.raises(ValueError, match="uint8"):
        ActivityQuery(0, np.zeros((4, 4, 3), dtype=np.float32), 0, 1)
    with pytest.raises(IndexError, match="memory_index"):
        tiny_net.answer(memory, [ObjectQuery(3, 0, 0, 4)])
    with pytest.raises(IndexError, match="Activity"):
        tiny_net.answer(memory, [ObjectQuery(0, 5, 0, 4)])


def test_training_gradients_reach_the_samplers_scoring_mlp(
    tiny_cfg: ModelConfig, make_tokens
) -> None:
    torch.manual_seed(0)
    net = LongVMNet(tiny_cfg).train()
    g = torch.Generator().manual_seed(0)
    memory = net.write_tokens_train(None, make_tokens(2), temperature=1.5, generator=g).memory
    memory, weights, _, _ = net.write_tokens_train(
        memory.detach(), make_tokens(2, seed=1), temperature=1.5, generator=g
    )
    assert torch.equal(weights, torch.ones_like(weights))  # forward value: exactly 1
    queries = [
        ActivityQuery(0, _image(1), 0, 32),
        ObjectQuery(1, 2, 10, 14),
        TimeQuery(0, 3, _image(2), 0, 32),
    ]
    boxes = np.tile(np.array([[0.5, 0.5, 0.2, 0.2]], dtype=np.float32), (4, 1))
    targets = [
        ActivityTarget([1, 3]),
        ObjectTarget(boxes, np.array([True, True, False, True])),
        TimeTarget(18, 25),
    ]
    losses = query_losses(net.forward_queries(memory, queries), queries, targets)
    assert set(losses) == {"activity", "box_l1", "box_giou", "time"}
    weighted_sum(losses, loss_weights(tiny_cfg)).backward()
    score_grad = net.sampler.score.net[-1].weight.grad
    assert score_grad is not None and torch.isfinite(score_grad).all()
    assert score_grad.abs().sum() > 0
    sampler_grads = [p.grad for p in net.sampler.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in sampler_grads)
    assert all(p.grad is None for p in net.backbone.parameters())


def test_inference_write_has_no_gradient_and_no_noise(tiny_cfg: ModelConfig, make_tokens) -> None:
    net = LongVMNet(tiny_cfg).train()
    first = net.write_tokens(None, make_tokens(1))
    assert not first.tokens.requires_grad
    assert net.training and net.sampler.training  # the mode is restored afterwards


def test_use_writer_switches_algorithm_and_config(tiny_cfg: ModelConfig, make_tokens) -> None:
    net = LongVMNet(tiny_cfg).eval()
    memory = net.write_tokens(None, make_tokens(1))
    neural = net.write_tokens(memory, make_tokens(1, seed=1))
    net.use_writer("merge")
    assert net.cfg.writer == "merge" and net.writer.name == "merge"
    merged = net.write_tokens(memory, make_tokens(1, seed=1))
    assert not merged.equal(neural)


def test_write_checks_shapes(tiny_net: LongVMNet, make_tokens) -> None:
    with pytest.raises(ValueError, match="at most 16 frames"):
        tiny_net.write_tokens(None, make_tokens(1, t=17))
    other = Memory.empty(dataclasses.replace(tiny_net.cfg, memory_size=8), 1)
    with pytest.raises(ValueError, match="slots"):
        tiny_net.write_tokens(other, make_tokens(1))


def test_a_time_radius_keeps_each_decoder_step_to_the_memory_near_it(tiny_cfg) -> None:
    from model.encoder_decoder import EncoderDecoder

    cfg = dataclasses.replace(tiny_cfg, decoder_time_radius=1)
    times = torch.tensor([[0, 3, 4, 5, 9, 4]])  # six memory slots, the last one empty
    valid = torch.tensor([[True, True, True, True, True, False]])
    cells = torch.zeros(1, 6, dtype=torch.long)
    memory = Memory(torch.zeros(1, 6, 8), times, cells, valid, torch.tensor([10]))
    steps = torch.tensor([[4, 8]])  # a window's steps, as decoder queries
    src_mask = torch.cat((valid, torch.ones(1, 2, dtype=torch.bool)), dim=1)  # + 2 query tokens
    mask = EncoderDecoder(cfg).cross_mask(memory, steps, src_mask)
    assert mask.tolist() == [
        [
            [False, True, True, True, False, False, True, True],  # step 4 reads steps 3-5
            [False, False, False, False, True, False, True, True],  # step 8 reads step 9
        ]
    ]
    paper = dataclasses.replace(tiny_cfg, decoder_time_radius=-1)  # paper: all of it
    whole = EncoderDecoder(paper).cross_mask(memory, steps, src_mask)
    assert torch.equal(whole, src_mask)


def test_a_memory_token_gets_its_similarity_to_the_querys_product(tiny_cfg: ModelConfig) -> None:
    """With the product match on, an activity answer moves with how much the memory looks
    like the object image even when the cell-by-cell product is neutralised."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny_cfg, object_match_dim=8)
    net = LongVMNet(cfg, pretrained_backbone=False).eval()
    ed = net.encoder_decoder
    assert ed.match is not None
    product = torch.randn(cfg.backbone_channels)
    image = product.expand(1, cfg.tokens_per_frame, -1)  # (1, S, C): the catalog image
    memory = Memory.empty(cfg, 2)
    memory.tokens[:, :16] = torch.randn(2, 16, cfg.backbone_channels)
    memory.tokens[0, :16] += 4 * product  # session 0 shows the product, session 1 does not
    memory.valid[:, :16] = True
    projected = ed.project_memory(memory)
    assert projected.tokens.shape == (2, cfg.memory_size, cfg.d_model + 8)
    keys = projected.tokens[..., cfg.d_model :]
    similarity = ed.match.similarity(keys[:, :16], ed.match.images(image).expand(2, -1))
    assert similarity[0].mean() > similarity[1].mean() + 0.3
    assert torch.allclose(keys.norm(dim=-1), torch.ones(2, cfg.memory_size), atol=1e-5)
    steps = torch.zeros(2, 1, dtype=torch.long)
    with torch.no_grad():
        with_match = ed(
            projected, steps, torch.ones(2, 1, dtype=torch.bool), image.expand(2, -1, -1)
        )
        ed.match_feature.weight.zero_()
        ed.match_feature.bias.zero_()
        without = ed(projected, steps, torch.ones(2, 1, dtype=torch.bool), image.expand(2, -1, -1))
    assert not torch.allclose(with_match, without)  # the similarity reached the decoder


def test_a_model_reads_into_a_larger_memory_without_new_weights(
    tiny_net: LongVMNet, make_tokens, tmp_path
) -> None:
    net = LongVMNet.load(tiny_net.save(tmp_path / "small"))
    net.resize_memory(4 * tiny_net.cfg.memory_size)
    memory = net.write_tokens(net.write_tokens(None, make_tokens(1)), make_tokens(1, seed=1))
    # two clips of 16 x 16 tokens: all kept (m = 256 would keep half)
    assert memory.size == 4 * tiny_net.cfg.memory_size and int(memory.valid.sum()) == 2 * 256
    (answer,) = net.answer(memory, [ActivityQuery(0, _image(1), 0, 10)])
    assert answer.probabilities.shape == (net.cfg.num_activities,)

    out = resize_checkpoint(tmp_path / "small", tmp_path / "large", 1024)
    large = LongVMNet.load(out)
    assert large.cfg.memory_size == 1024
    assert all(
        torch.equal(a, b)
        for a, b in zip(large.state_dict().values(), tiny_net.state_dict().values(), strict=True)
    )


def test_time_from_steps_takes_the_run_around_the_peak_of_the_asked_activity() -> None:
    from model.network import time_from_steps

    steps = np.zeros((10, 5), dtype=np.float32)
    steps[:, 2] = [0.0, 0.3, 0.1, 0.5, 0.9, 0.6, 0.44, 0.8, 0.0, 0.0]  # peak at 4
    steps[:, 1] = [0.99] + [0.0] * 9  # another activity: never read
    query = TimeQuery(0, activity=2, object_image=_image(1), start=20, end=30)
    answer = time_from_steps(query, ActivityPrediction(steps.max(axis=0), steps))
    assert (answer.start, answer.end) == (23, 26)  # steps 3-5 stay at least half of 0.9
    assert answer.score == pytest.approx(0.9)


def test_time_answers_from_activity_steps_change_only_the_time_answers(
    tiny_net: LongVMNet, memory: Memory, tmp_path
) -> None:
    from model.network import time_from_steps

    queries = _mixed_queries()
    head = tiny_net.answer(memory, queries)
    out = resize_checkpoint(
        tiny_net.save(tmp_path / "head"), tmp_path / "steps", None, "activity_steps"
    )
    net = LongVMNet.load(out)
    assert (
        net.cfg.time_answers == "activity_steps" and net.cfg.memory_size == tiny_net.cfg.memory_size
    )
    steps = net.answer(memory, queries)
    for q, a, b in zip(queries, head, steps, strict=True):
        if not isinstance(q, TimeQuery):
            assert type(a) is type(b)
            continue
        assert isinstance(b, TimePrediction) and q.start <= b.start < b.end <= q.end
        (asked,) = net.answer(
            memory, [ActivityQuery(q.memory_index, q.object_image, q.start, q.end)]
        )
        alone = time_from_steps(q, asked)
        # the same steps, read in another batch: the window is the same, the score within
        # float rounding (the batch's padding changes the order of sums on some CPUs)
        assert (b.start, b.end) == (alone.start, alone.end)
        assert b.score == pytest.approx(alone.score, rel=1e-5, abs=1e-6)
    with pytest.raises(Exception, match="time_answers must be one of"):
        dataclasses.replace(tiny_net.cfg, time_answers="guess")
