"""The pair's naming rule: the geometric mean of its members' answers."""

import numpy as np
import pytest

from model.pair_naming import geometric_mean


def test_the_geometric_mean_is_the_nth_root_of_the_product_elementwise() -> None:
    got = geometric_mean([[0.5, 0.8], np.array([0.125, 0.2]), [1.0, 0.05]])
    assert got.dtype == np.float64
    assert got == pytest.approx([(0.5 * 0.125) ** (1 / 3), (0.8 * 0.2 * 0.05) ** (1 / 3)])


def test_a_member_sure_of_nothing_pulls_the_answer_down_more_than_the_mean() -> None:
    answers = [[0.9], [0.001]]
    assert geometric_mean(answers)[0] < np.mean(answers) / 10


def test_small_probabilities_in_float32_do_not_underflow_and_none_are_refused() -> None:
    tiny = np.full(3, 1e-20, dtype=np.float32)
    assert geometric_mean([tiny, tiny, tiny]) == pytest.approx(1e-20, rel=1e-5)
    with pytest.raises(ValueError, match="no answers"):
        geometric_mean([])
    with pytest.raises(ValueError):
        geometric_mean([[0.1, 0.2], [0.3]])
