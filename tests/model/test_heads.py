import math

import torch

from model import ModelConfig
from model.heads import ActivityHead, BoxHead, decode_time


def test_decode_time_takes_the_best_pair_with_start_before_end() -> None:
    start = torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0])
    end = torch.tensor([0.0, 0.0, 0.0, 4.0, 0.0])  # last step 3: end-exclusive 4
    s, e, p = decode_time(start, end)
    assert (s, e) == (1, 4)
    expected = start.softmax(0)[1] * end.softmax(0)[3]
    assert math.isclose(p, expected.item(), rel_tol=1e-5)


def test_decode_time_never_returns_an_empty_or_reversed_interval() -> None:
    start = torch.tensor([0.0, 0.0, 0.0, 9.0])  # start wants the last step ...
    end = torch.tensor([9.0, 0.0, 0.0, 0.0])  # ... end wants the first
    s, e, _ = decode_time(start, end)
    assert 0 <= s < e <= 4
    one_step = decode_time(torch.zeros(1), torch.zeros(1))
    assert one_step[:2] == (0, 1) and math.isclose(one_step[2], 1.0)


def test_activity_head_pools_only_real_steps() -> None:
    cfg = ModelConfig.preset("tiny")
    head = ActivityHead(cfg)
    steps = torch.randn(2, 5, cfg.d_model)
    mask = torch.tensor([[True, True, True, False, False]] * 2)
    changed = steps.clone()
    changed[:, 3:] = 1e4  # padding must not leak into the answer
    assert torch.equal(head(steps, mask), head(changed, mask))
    assert head(steps, mask).shape == (2, cfg.num_activities)


def test_box_head_gives_unit_range_boxes() -> None:
    cfg = ModelConfig.preset("tiny")
    boxes = BoxHead(cfg)(torch.randn(3, 7, cfg.d_model) * 100)
    assert boxes.shape == (3, 7, 4)
    assert ((boxes >= 0) & (boxes <= 1)).all()


def test_activity_head_answers_with_the_strongest_step() -> None:
    cfg = ModelConfig.preset("tiny")
    head = ActivityHead(cfg)
    steps = torch.randn(1, 6, cfg.d_model)
    mask = torch.ones(1, 6, dtype=torch.bool)
    per_step = torch.stack([head(steps[:, i : i + 1], mask[:, :1]) for i in range(6)])  # (6, 1, A)
    assert torch.allclose(head(steps, mask), per_step.amax(dim=0))
