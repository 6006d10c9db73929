import pytest
import torch

from model import ActivityQuery, ActivityTarget, ModelConfig, TimeQuery, loss_weights, query_losses
from model.losses import activity_loss, box_losses, gaussian_target, time_loss, weighted_sum
from model.outputs import ActivityOutputs, QueryOutputs


def test_focal_loss_prefers_the_right_labels() -> None:
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    right = activity_loss(torch.tensor([[4.0, -4.0, 4.0]]), labels)
    wrong = activity_loss(torch.tensor([[-4.0, 4.0, -4.0]]), labels)
    assert right < 0.01 < wrong


def test_box_losses_vanish_for_perfect_boxes_and_skip_unannotated_steps() -> None:
    target = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.3, 0.3, 0.1, 0.1]]])
    present = torch.tensor([[True, False]])
    pred = target.clone()
    pred[0, 1] = torch.tensor([0.9, 0.9, 0.5, 0.5])  # unannotated: must not count
    l1, giou = box_losses(pred, target, present)
    assert l1.item() == pytest.approx(0.0, abs=1e-6) and giou.item() == pytest.approx(0.0, abs=1e-5)
    pred[0, 0] = torch.tensor([0.6, 0.5, 0.2, 0.4])
    l1, giou = box_losses(pred, target, present)
    assert l1.item() == pytest.approx(0.1, abs=1e-6) and giou.item() > 0.1


def test_box_losses_without_annotations_are_zero_but_keep_the_graph() -> None:
    pred = torch.rand(1, 3, 4, requires_grad=True)
    l1, giou = box_losses(pred, torch.rand(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool))
    (l1 + giou).backward()
    assert l1.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_time_loss_is_smallest_at_the_smoothed_target() -> None:
    mask = torch.tensor([[True] * 8 + [False] * 2])
    start, last = torch.tensor([2]), torch.tensor([5])
    target_start = gaussian_target(start, mask).clamp_min(1e-12).log()
    target_end = gaussian_target(last, mask).clamp_min(1e-12).log()
    at_target = time_loss(target_start, target_end, mask, start, last)
    shifted = time_loss(target_start.roll(2, -1), target_end.roll(-2, -1), mask, start, last)
    assert at_target.item() == pytest.approx(0.0, abs=1e-4)
    assert shifted > 1.0 and torch.isfinite(shifted)


def test_gaussian_target_is_a_distribution_over_real_steps() -> None:
    mask = torch.tensor([[True] * 4 + [False] * 3])
    target = gaussian_target(torch.tensor([3]), mask)
    assert target.sum().item() == pytest.approx(1.0)
    assert (target[0, 4:] == 0).all() and target[0].argmax() == 3


def test_weights_follow_the_paper_and_weighted_sum_uses_them() -> None:
    weights = loss_weights(ModelConfig.preset("paper"))
    assert weights["box_l1"] == 5.0 and weights["box_giou"] == 2.0
    losses = {"box_l1": torch.tensor(1.0), "box_giou": torch.tensor(0.5)}
    assert weighted_sum(losses, weights).item() == pytest.approx(6.0)


def test_query_losses_check_that_targets_match_their_queries() -> None:
    image = torch.zeros(8, 8, 3, dtype=torch.uint8)
    queries = [ActivityQuery(0, image, 0, 4)]
    outputs = QueryOutputs(activity=ActivityOutputs([0], torch.zeros(1, 5)))
    assert set(query_losses(outputs, queries, [ActivityTarget([1])])) == {"activity"}
    with pytest.raises(TypeError, match="ActivityTarget"):
        query_losses(outputs, queries, [TimeQuery(0, 1, image, 0, 4)])


def test_step_loss_judges_each_labelled_step_and_skips_the_unjudged_ones() -> None:
    from model.losses import activity_step_loss, step_labels

    image = torch.zeros(8, 8, 3, dtype=torch.uint8)
    queries = [ActivityQuery(0, image, 0, 3), ActivityQuery(0, image, 0, 2)]
    steps = torch.tensor(
        [[[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]], [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]]
    )
    mask = torch.tensor([[True, True, True], [True, True, False]])
    targets = [ActivityTarget([0], steps[0].numpy()), ActivityTarget([1], steps[1, :2].numpy())]
    right = torch.tensor(
        [[[6.0, -6.0], [-6.0, -6.0], [6.0, -6.0]], [[-6.0, 6.0], [-6.0, -6.0], [9.0, 9.0]]]
    )
    labels = step_labels(right, mask, [0, 1], targets)
    assert labels is not None and labels[1, 2].tolist() == [-1.0, -1.0]  # padding: not judged
    # the unjudged boundary step and the padded step may say anything
    assert activity_step_loss(right, labels).item() < 0.01
    wrong = right.clone()
    wrong[0, 1, 0] = 6.0  # an activity where none was
    assert activity_step_loss(wrong, labels).item() > 1.0
    outputs = QueryOutputs(activity=ActivityOutputs([0, 1], right.amax(dim=1), right, mask))
    assert set(query_losses(outputs, queries, targets)) == {"activity", "activity_steps"}
    with pytest.raises(ValueError, match="one row of labels per window step"):
        step_labels(right, mask, [0, 1], [targets[0], ActivityTarget([1], steps[1].numpy())])
