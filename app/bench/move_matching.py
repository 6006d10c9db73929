"""Which moments read from the model's answers are the annotation's cart moves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.reconcile.basket import PUT, TAKE_OUT
from app.reconcile.moves import Moment

#: the annotated activities that move an item, and how
MOVES = {PUT: +1, TAKE_OUT: -1}


def matched_moves(session: dict[str, Any], moments: Sequence[Moment]) -> list[int | None]:
    """Per moment, the index in ``session["spans"]`` of the annotated move of its direction
    that it overlaps within a step, or None (spurious). Moves are matched in annotation
    order, each to the first moment not yet matched."""
    fps = float(next(iter(session["steps"].values()))["fps"])
    match: list[int | None] = [None] * len(moments)
    for j, (activity, _sku, start, end) in enumerate(session["spans"]):
        change = MOVES.get(activity)
        for i, m in enumerate(moments):
            if (
                match[i] is None
                and m.change == change
                and m.start <= end * fps + 1
                and m.end >= start * fps - 1
            ):
                match[i] = j
                break
    return match
