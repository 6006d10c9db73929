"""The till's scans and the model's cart moves read together, as one most probable assignment.

``scan_repair`` lets the scans move a moment to a runner-up product, greedily and one at a
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
exactly with HiGHS (``scipy.optimize.milp``). Validation or tuning sets only.

``--moves annotation`` reads the annotation's moves in place of the model's moments, with
each product's peak over the move's own steps, and ``--boost B`` adds ``B`` to the log
answer of each move's true product: what the reading would reach if moments were exact and
the model named the moved product that much more surely (its top-1 at each boost is
printed). It measures what the model must reach, not what it reaches.

    python -m app.bench.reconcile_decode --data DATA --split val --checkpoint RUN --answers A
    python -m app.bench.scan_assignment --answers A [--margins 0,1,2] [--moves annotation]
        [--boost 0,1,2,3]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from app.bench.identify_fusion import FLOOR, kept_answers
from app.bench.reconcile_decode import planted_sessions
from app.bench.scan_repair import Moment, step_moments
from app.reconcile.basket import PUT, TAKE_OUT

#: the annotated activities that move an item, and how
MOVES = {PUT: +1, TAKE_OUT: -1}


@dataclass(frozen=True)
class Prices:
    """Costs in nats: an item over the scans, an item under them, a moment given to none."""

    over: float = 1.0
    under: float = 1.0
    spurious: float = 6.0


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

    def __init__(self, moments: Sequence[Moment], scanned: np.ndarray, prices: Prices) -> None:
        n, p = len(moments), len(scanned)
        q = p + 1
        self.p, self.q, self.nx = p, q, n * q
        cost = np.zeros(self.nx + 2 * p)
        for i, m in enumerate(moments):
            cost[i * q : i * q + p] = -np.log(np.asarray(m.peaks, dtype=np.float64) + FLOOR)
            cost[i * q + p] = prices.spurious
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


def assign(moments: Sequence[Moment], scanned: np.ndarray, prices: Prices = Prices()) -> Assignment:
    """The most probable reading of ``moments`` against the ``scanned`` counts (P,)."""
    best = _Program(moments, scanned, prices).solve()
    assert best is not None  # every moment given to none is always a reading
    return best


def assigned_flags(
    moments: Sequence[Moment], scanned: np.ndarray, prices: Prices = Prices()
) -> tuple[Assignment, list[AssignedFlag]]:
    """The best reading and each difference it leaves, with its margin."""
    program = _Program(moments, scanned, prices)
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


def annotated_moves(session: dict[str, Any], boost: float = 0.0) -> tuple[list[Moment], list[int]]:
    """The annotation's puts and take-outs as moments (each product's peak answer over the
    move's steps), the true product's log answer raised by ``boost``; and the true products."""
    skus = list(session["steps"])
    fps = float(session["steps"][skus[0]]["fps"])
    moments, truth = [], []
    for activity, sku, start, end in session["spans"]:
        if activity not in MOVES:
            continue
        a = math.floor(start * fps)
        b = max(a + 1, math.ceil(end * fps))
        answers = np.array([session["steps"][k][activity][a:b] for k in skus])  # (P, steps)
        logs = np.log(answers.max(axis=1) + FLOOR)
        logs[skus.index(sku)] += boost
        peaks = np.exp(logs - logs.max())
        moments.append(Moment(MOVES[activity], a, b, peaks / peaks.sum()))
        truth.append(skus.index(sku))
    return moments, truth


def score(
    sessions: list[dict[str, Any]],
    moves: str,
    boost: float,
    margins: Sequence[float],
    prices: Prices = Prices(),
) -> list[dict[str, Any]]:
    """Recall, precision and false flags per margin over the planted sessions."""
    flagged: list[list[tuple[bool, float]]] = []
    named = total = 0
    for session, planted, scans in planted_sessions(sessions):
        skus = list(session["steps"])
        if moves == "annotation":
            moments, truth = annotated_moves(session, boost)
            named += sum(int(m.peaks.argmax()) == t for m, t in zip(moments, truth, strict=True))
            total += len(moments)
        else:
            moments = step_moments(session["steps"])
        scanned = np.array([scans.get(sku, 0) for sku in skus], dtype=np.int64)
        _, found = assigned_flags(moments, scanned, prices)
        flagged.append([(skus[f.product] == planted and f.change > 0, f.margin) for f in found])
    n = max(len(flagged), 1)
    lines = []
    for margin in margins:
        real = sum(r for trip in flagged for r, m in trip if m >= margin)
        raised = sum(1 for trip in flagged for _, m in trip if m >= margin)
        lines.append(
            {
                "moves": moves,
                "boost": boost,
                "moved_product_top1": named / total if total else None,
                "margin": margin,
                "sessions": len(flagged),
                "recall": real / n,
                "precision": real / raised if raised else None,
                "false_flags_per_session": (raised - real) / n,
            }
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument("--moves", choices=("model", "annotation"), default="model")
    parser.add_argument("--boost", default="0", help="comma-separated nats (annotation moves)")
    parser.add_argument("--margins", default="0,1,2,4")
    parser.add_argument("--prices", default="1,1,6", help="over,under,spurious in nats")
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    args = parser.parse_args(argv)
    try:
        sessions = kept_answers(args.answers, args.sessions, with_boxes=False)
        over, under, spurious = (float(v) for v in args.prices.split(","))
    except ValueError as error:
        parser.error(str(error))
    boosts = [float(b) for b in args.boost.split(",")]
    if args.moves == "model" and boosts != [0.0]:
        parser.error("--boost applies to --moves annotation only.")
    margins = [float(m) for m in args.margins.split(",")]
    for boost in boosts:
        lines = score(sessions, args.moves, boost, margins, Prices(over, under, spurious))
        for line in lines:
            print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
