"""One hand, one product: an event seen for several products at once belongs to one of them.

Each product's per-step answer is read on its own (``basket.step_events``), and a model that
tells products apart imperfectly sees a put of one product as a weaker put of its look-alikes
at the same moment. A shopper's hand puts one product at a time, so of the events of one
direction that overlap in time across products, the most probable stays counted; the others
are explained away: uncounted, with the probability that they happened although the stronger
one did not, ``p * (1 - p_best)`` (they still weigh in the count distribution, so a close call
keeps some confidence).

What this assumes: two different products are not put in (or taken out) in the same moment.
A shopper who puts two products in with both hands gets one of them counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from app.reconcile.basket import Event


def one_product_per_moment(events: Mapping[str, Sequence[Event]]) -> dict[str, list[Event]]:
    """Per product, its events with those explained away by another product's stronger,
    overlapping, counted event of the same direction."""
    counted = [(sku, e) for sku, mine in events.items() for e in mine if e.counted]
    out: dict[str, list[Event]] = {}
    for sku, mine in events.items():
        kept = []
        for e in mine:
            rivals = [
                other.probability
                for owner, other in counted
                if owner != sku
                and other.change == e.change
                and other.start < e.end
                and e.start < other.end
            ]
            best = max(rivals, default=0.0)
            if best > e.probability:
                e = replace(e, counted=False, probability=e.probability * (1.0 - best))
            kept.append(e)
        out[sku] = kept
    return out
