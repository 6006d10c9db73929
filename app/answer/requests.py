"""A claimed query checked against the session, the catalog and the model, in one sentence
when it cannot be answered, else turned into the model's query objects."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from model import ActivityQuery, ObjectQuery, TimeQuery
from storage.query_queue import ClaimedQuery

MAX_RANKED_PRODUCTS = 500


class InvalidQuery(Exception):
    """The query can never be answered as asked; ``str`` says why in one sentence."""


class NotReadyYet(Exception):
    """The query may be answerable later (e.g. no memory yet for a session still streaming)."""


@dataclass(frozen=True)
class SessionView:
    session_id: str
    status: str
    frames_seen: int  # in the stored memory
    fps: float  # the rate the memory was written at: a step is 1 / fps seconds


@dataclass
class Request:
    """One claimed query made ready for the model: its model queries and how to read them."""

    claimed: ClaimedQuery
    session: SessionView
    start_step: int
    end_step: int
    clipped: bool
    model_queries: list[Any] = field(default_factory=list)
    ranked_skus: list[str] = field(default_factory=list)  # "which product" mode
    activity: str | None = None


def build_request(
    claimed: ClaimedQuery,
    session: SessionView | None,
    *,
    labels: tuple[str, ...],
    product_images: dict[str, np.ndarray],
    catalog: list[str],
) -> Request:
    """Check ``claimed`` and build its model queries (``memory_index`` set later)."""
    p = claimed.params
    if session is None:
        raise InvalidQuery(
            f"session {claimed.session_id!r} is unknown: no video was ingested for it."
        )
    if session.frames_seen == 0:
        if session.status == "open":
            raise NotReadyYet(
                f"session {claimed.session_id!r} has no memory yet; it is still streaming."
            )
        raise InvalidQuery(f"session {claimed.session_id!r} ended without any video in its memory.")
    start_s, end_s = _window(p)
    fps = session.fps
    recorded_s = session.frames_seen / fps
    if start_s >= recorded_s:
        raise InvalidQuery(
            f"the window starts at {start_s:g} s but session {claimed.session_id!r} has "
            f"{recorded_s:g} s of video{' so far' if session.status == 'open' else ''}."
        )
    clipped = end_s > recorded_s
    start = math.floor(start_s * fps)
    end = max(start + 1, min(math.ceil(end_s * fps), session.frames_seen))
    request = Request(claimed, session, start, end, clipped)
    kind = claimed.kind
    if kind == "activity":
        sku = p.get("sku")
        if sku is not None:
            # per-step answers are what reconciliation names moves with: a model pair adds
            # its second model's there (``model.pair``)
            image = _image(sku, product_images)
            naming = bool(p.get("steps"))
            request.model_queries = [ActivityQuery(0, image, start, end, naming=naming)]
        else:  # which product: every candidate SKU through the activity head in one batch
            request.activity = _activity(p, labels)
            skus = [s for s in (p.get("skus") or catalog) if s in product_images][
                :MAX_RANKED_PRODUCTS
            ]
            if not skus:
                raise InvalidQuery("there is no product in the catalog to rank.")
            request.ranked_skus = skus
            # naming a product is what a pair's second model is for (``model.pair``)
            request.model_queries = [
                ActivityQuery(0, product_images[s], start, end, naming=True) for s in skus
            ]
    elif kind == "object":
        request.activity = _activity(p, labels)
        request.model_queries = [ObjectQuery(0, labels.index(request.activity), start, end)]
    elif kind == "time":
        request.activity = _activity(p, labels)
        image = _image(_required(p, "sku"), product_images)
        request.model_queries = [TimeQuery(0, labels.index(request.activity), image, start, end)]
    else:
        raise InvalidQuery(f"query kind {kind!r} is unknown (activity, object or time).")
    return request


def decode_product_image(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        return np.array(img.convert("RGB"))  # a writable copy: torch warns on read-only arrays


def _window(p: dict[str, Any]) -> tuple[float, float]:
    try:
        start, end = float(p["from"]), float(p["to"])
    except KeyError as exc:
        raise InvalidQuery(
            f"the query has no {exc.args[0]!r} time (seconds from session start)."
        ) from None
    except (TypeError, ValueError):
        raise InvalidQuery("the window's 'from' and 'to' must be numbers of seconds.") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InvalidQuery("the window's 'from' and 'to' must be finite numbers of seconds.")
    if start < 0:
        raise InvalidQuery(f"the window starts at {start:g} s, before the session began.")
    if end <= start:
        raise InvalidQuery(f"the window [{start:g} s, {end:g} s) is empty or reversed.")
    return start, end


def _activity(p: dict[str, Any], labels: tuple[str, ...]) -> str:
    activity = _required(p, "activity")
    if activity not in labels:
        raise InvalidQuery(f"activity {activity!r} is unknown; use one of {', '.join(labels)}.")
    return activity


def _image(sku: str, product_images: dict[str, np.ndarray]) -> np.ndarray:
    image = product_images.get(sku)
    if image is None:
        raise InvalidQuery(f"SKU {sku!r} is not in the catalog (`cartmem catalog add` adds it).")
    return image


def _required(p: dict[str, Any], name: str) -> str:
    value = p.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidQuery(f"the query needs {name!r}.")
    return value
