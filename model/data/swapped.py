"""Swapped-product negatives: the same window as a positive activity query, another product.

The dataset's own negatives (``QueryConfig.negative_fraction``) ask about a product nobody
touched in a *random* window, which mostly shows no hand at work at all: a model can answer
them by seeing that nothing happens. Reconciliation asks something harder: a put happened
here, was it *this* product? A swapped twin asks exactly that. It keeps the window of a
positive query, where the anchor product was handled, and asks about another product of the
same store that nobody touched in that window; the answer is "nothing".

Twins are derived from the annotations when a split is loaded (not written into the dataset),
so every dataset, converted ones included, gets them, and each is the same on every load: its
product is drawn with a generator seeded by the original query's id.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from model.synth.records import ActivityQueryRecord, QueryRecord, VideoAnnotation

#: Appended to the original query's id to name its twin.
TWIN_SUFFIX = "~swap"


def is_twin(query_id: str) -> bool:
    return query_id.endswith(TWIN_SUFFIX)


def swapped_twins(
    video: VideoAnnotation,
    records: Sequence[QueryRecord],
    skus: Sequence[str],
    fraction: float,
) -> list[ActivityQueryRecord]:
    """A twin for ``fraction`` of the positive activity queries of ``video``.

    ``skus``: the products the video's store sells, the only ones a twin may ask about.
    The twin's product is untouched in the window; half of the twins take it from the
    products handled elsewhere in the session when there are any (those are the ones a
    checkout would count twice), the others from the whole store.
    """
    if fraction <= 0.0:
        return []
    in_video = {s.sku for s in video.spans}
    twins = []
    for record in records:
        if not isinstance(record, ActivityQueryRecord) or not record.activities:
            continue
        rng = np.random.default_rng(zlib.crc32(record.query_id.encode()))
        if rng.random() >= fraction:
            continue
        touched = {s.sku for s in video.spans if s.start < record.end and s.end > record.start}
        elsewhere = sorted(in_video - touched)
        anywhere = sorted(set(skus) - touched)
        pool = elsewhere if elsewhere and rng.random() < 0.5 else anywhere
        if not pool:
            continue
        sku = pool[int(rng.integers(len(pool)))]
        twins.append(
            replace(record, query_id=record.query_id + TWIN_SUFFIX, sku=sku, activities=())
        )
    return twins
