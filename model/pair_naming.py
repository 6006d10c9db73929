"""How a model pair's members' answers are combined to name products: one rule, read by the
served pair (``model.pair``) and by the benchmarks that average kept answers
(``app.bench.reconcile_decode --average-with --geometric``), so both mean the same.

The geometric mean, the n-th root of the members' product: a member sure that a product was
not handled pulls the answer down more than the arithmetic mean lets it, and the members
trained apart make different naming mistakes (docs/RESULTS.md, "Two models' answers
served").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def geometric_mean(answers: Sequence[ArrayLike]) -> np.ndarray:
    """The members' ``answers`` (each the same shape) combined elementwise, in float64 so
    that three small probabilities' product does not underflow; a ``ValueError`` for none."""
    if not answers:
        raise ValueError("the geometric mean of no answers is undefined")
    stacked = np.stack([np.asarray(a, dtype=np.float64) for a in answers])
    return np.prod(stacked, axis=0) ** (1.0 / len(answers))
