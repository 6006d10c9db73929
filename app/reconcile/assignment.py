"""The till's scans and the model's cart moves read together, as one most probable assignment.

``app.bench.scan_repair`` lets the scans move a moment to a runner-up product, greedily and one at a
time, and counts what is left. This reads a whole trip at once: every moment (an item moved
into or out of the cart, with each product's peak answer in it) is given to one product or
to none (a move the model saw that did not happen), and the assignment kept is the most
probable one, ``sum(-log peak)``, among those where no product leaves the cart before it
went in, with a price per item by which a product's final count exceeds its scans (an item
the till did not scan) or falls short of them (a scanned item the model did not see moved).
A flag is a product left over or under its scans; its margin is how much less probable the
best reading without that difference is (a log ratio, in nats), so a flag at margin 3 would
need the model's answers to be e^3 times more wrong somewhere else to go away.

The program is small (a trip's ~70 moments over its store's ~24 products) and is solved
exactly with HiGHS (``scipy.optimize.milp``); ``reading_limits`` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from app.reconcile.moves import FLOOR, Moment


@dataclass(frozen=True)
class Prices:
    """Costs in nats: an item over the scans, an item under them, a moment given to none."""

    over: float = 1.0
    under: float = 1.0
    spurious: float = 6.0


#: the prices the measurements in docs/RESULTS.md use unless they say otherwise
PRICES = Prices()


@dataclass(frozen=True)
class Assignment:
    owner: list[int | None]  # per moment: its product (index into the scans), or None
    over: np.ndarray  # (P,) items counted beyond the scans
    under: np.ndarray  # (P,) scanned items not counted
    cost: float


@dataclass(frozen=True)
class AssignedFlag:
    product: int
    change: int  # +n: n items over the scans; -n: n under
    margin: float  # nats the best reading without this difference costs more (inf: none)


class _Program:
    """The integer program of one trip; ``solve`` may forbid single over/under variables.

    Variables: ``x[i, q]`` (moment ``i`` given to product ``q``, ``q == P``: to none), then
    ``over[p]`` and ``under[p]``. Rows: each moment given once; each product's count equals
    its scans plus over minus under; each product's count is never negative at a take-out.
    """

    def __init__(
        self,
        moments: Sequence[Moment],
        scanned: np.ndarray,
        prices: Prices,
        dropped: Sequence[float] | None = None,
    ) -> None:
        n, p = len(moments), len(scanned)
        if dropped is not None and len(dropped) != n:
            raise ValueError(f"{len(dropped)} prices for dropping {n} moments")
        q = p + 1
        self.p, self.q, self.nx = p, q, n * q
        cost = np.zeros(self.nx + 2 * p)
        for i, m in enumerate(moments):
            cost[i * q : i * q + p] = -np.log(np.asarray(m.peaks, dtype=np.float64) + FLOOR)
            cost[i * q + p] = prices.spurious if dropped is None else dropped[i]
        cost[self.nx : self.nx + p] = prices.over
        cost[self.nx + p :] = prices.under
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lower: list[float] = []
        upper: list[float] = []

        def row(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
            r = len(lower)
            for c, v in entries:
                rows.append(r)
                cols.append(c)
                vals.append(v)
            lower.append(lo)
            upper.append(hi)

        for i in range(n):
            row([(i * q + k, 1.0) for k in range(q)], 1.0, 1.0)
        for k in range(p):
            moved = [(i * q + k, float(m.change)) for i, m in enumerate(moments)]
            row([*moved, (self.nx + k, -1.0), (self.nx + p + k, 1.0)], scanned[k], scanned[k])
        order = sorted(range(n), key=lambda i: (moments[i].start, moments[i].change))
        for at, j in enumerate(order):
            if moments[j].change > 0:
                continue
            before = order[: at + 1]  # the replay order of ``basket.belief``
            for k in range(p):
                row([(i * q + k, float(moments[i].change)) for i in before], 0.0, math.inf)
        shape = (len(lower), len(cost))
        matrix = coo_matrix((vals, (rows, cols)), shape=shape).tocsr()
        self.cost = cost
        self.rows = LinearConstraint(matrix, np.array(lower), np.array(upper))
        self.upper = np.ones(len(cost))
        self.upper[self.nx :] = np.inf

    def solve(self, forbid: int | None = None) -> Assignment | None:
        upper = self.upper.copy()
        if forbid is not None:
            upper[forbid] = 0.0
        found = milp(
            self.cost,
            constraints=self.rows,
            integrality=np.ones(len(self.cost)),
            bounds=Bounds(np.zeros(len(self.cost)), upper),
        )
        if found.x is None:
            return None  # infeasible: e.g. a product under its scans that no moment can fill
        x = np.round(found.x).astype(np.int64)
        owner: list[int | None] = []
        for i in range(self.nx // self.q):
            k = int(np.argmax(x[i * self.q : (i + 1) * self.q]))
            owner.append(None if k == self.p else k)
        return Assignment(
            owner, x[self.nx : self.nx + self.p], x[self.nx + self.p :], float(found.fun)
        )


def assign(
    moments: Sequence[Moment],
    scanned: np.ndarray,
    prices: Prices = PRICES,
    dropped: Sequence[float] | None = None,
) -> Assignment:
    """The most probable reading of ``moments`` against the ``scanned`` counts (P,);
    ``dropped``: per moment, what giving it to none costs (default ``prices.spurious``)."""
    best = _Program(moments, scanned, prices, dropped).solve()
    assert best is not None  # every moment given to none is always a reading
    return best


def assigned_flags(
    moments: Sequence[Moment],
    scanned: np.ndarray,
    prices: Prices = PRICES,
    dropped: Sequence[float] | None = None,
) -> tuple[Assignment, list[AssignedFlag]]:
    """The best reading and each difference it leaves, with its margin (``dropped`` as in
    ``assign``)."""
    program = _Program(moments, scanned, prices, dropped)
    best = program.solve()
    assert best is not None
    flags = []
    for k in range(program.p):
        under_column = program.nx + program.p + k
        for change, column in (
            (int(best.over[k]), program.nx + k),
            (-int(best.under[k]), under_column),
        ):
            if change == 0:
                continue
            without = program.solve(forbid=column)
            margin = math.inf if without is None else without.cost - best.cost
            flags.append(AssignedFlag(k, change, margin))
    return best, flags
