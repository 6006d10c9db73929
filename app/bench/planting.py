"""Which item of a true basket the till misses, in every reconciliation benchmark alike."""

from __future__ import annotations

import numpy as np


def plant(basket: dict[str, int], rng: np.random.Generator) -> tuple[str, dict[str, int]]:
    """One item the till misses (a product taken once, if any) and what it scans."""
    singles = sorted(sku for sku, n in basket.items() if n == 1)
    planted = str(rng.choice(singles or sorted(basket)))
    scans = {sku: n - (sku == planted) for sku, n in sorted(basket.items())}
    return planted, {sku: n for sku, n in scans.items() if n > 0}
