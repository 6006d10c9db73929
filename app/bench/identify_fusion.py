"""Naming a put's product: the memory's answer, the catalog picture fitted to the pixels, both.

At a put the shipped model ranks the handled product's own answer first about two times in
three (docs/RESULTS.md), and reconciliation needs it nearly always. A template matcher
(``model.evaluate.crop_match.template_scores``) learns nothing and names an item from its
crops over the seconds it is held. This measures, at every annotated put of a validation or
tuning set, how often each names the put's product and how often their sum does
(``log(model peak) + weight * template votes``), so that a design that keeps a picture of
what the hand holds beside the memory can be weighed before it is built.

The crops are cut at the annotation's boxes (a perfect localisation, which such a design
would have to earn) or, ``--boxes model``, at the model's own: each activity's object
question over the session, a box per step, kept by ``reconcile_decode --answers``.

    python -m app.bench.reconcile_decode --data DATA --split val --checkpoint RUN --answers A
    python -m app.bench.identify_fusion --data DATA --answers A [--weights 0.05,0.1,0.2]
        [--boxes annotation|model]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.reconcile.moves import FLOOR
from model.data.split import load_catalog_images
from model.evaluate.crop_match import CROP_SIZE, picture_at, square_crop, template_scores
from model.synth.reader import Dataset, read_dataset
from model.synth.video_io import iter_video_frames

PUT = "put_in_cart"
#: spans of one item closer than this (seconds) are one handling: an episode's activities
#: follow each other without a gap
TOUCH_S = 0.05
#: the templates' correlations are turned into votes as a softmax at this temperature
TEMPERATURE = 0.07


@dataclass(frozen=True)
class PutHandling:
    """A put and the handling it ends: the item's spans that touch each other up to it."""

    sku: str
    put_start: float
    put_end: float
    start: float  # the handling's first span's start (the take, or the take-out)
    end: float


def put_handlings(spans: Sequence[Sequence[Any]]) -> list[PutHandling]:
    """Every put of ``spans`` (``activity, sku, start, end``) with its handling."""
    out = []
    for activity, sku, start, end in spans:
        if activity != PUT:
            continue
        own = sorted((float(s), float(e)) for a, k, s, e in spans if k == sku)
        first = float(start)
        for s, e in reversed(own):
            if s < first and abs(e - first) <= TOUCH_S:
                first = s
        out.append(PutHandling(sku, float(start), float(end), first, float(end)))
    return out


def fused_choice(peak: np.ndarray, votes: np.ndarray, weight: float) -> int:
    """The product whose ``log(peak) + weight * votes`` is highest (``(P,)`` each)."""
    return int(np.argmax(np.log(peak + FLOOR) + weight * votes))


def template_votes(crops: np.ndarray, pictures: np.ndarray) -> np.ndarray:
    """``(P,)``: the sum over the crops ``(n, s, s, 3)`` of their log-softmax over the
    pictures ``(P, s, s, 3)`` (template correlations at ``TEMPERATURE``)."""
    scores = template_scores(torch.from_numpy(crops), pictures) / TEMPERATURE
    return scores.log_softmax(-1).sum(0).numpy()


def model_boxes(session: dict[str, Any]) -> np.ndarray:
    """``(L, 4)``: at each step, the model's box (its object question's answer) for the
    activity its per-step answers find most likely there, over all of the store's products."""
    labels = list(session["boxes"])
    strongest = np.stack(
        [
            np.max([session["steps"][sku][label] for sku in session["steps"]], axis=0)
            for label in labels
        ]
    )  # (A, L)
    boxes = np.array([session["boxes"][label] for label in labels])  # (A, L, 4)
    return boxes[strongest.argmax(0), np.arange(strongest.shape[1])]


def identify(
    sessions: list[dict[str, Any]],
    dataset: Dataset,
    weights: Sequence[float],
    boxes_from: str = "annotation",
) -> dict[str, Any]:
    """At every put with crops: the model alone, the template alone, and their sums; the
    crops cut at the annotation's boxes or at the model's own (``model_boxes``)."""
    model_hits, template_hits = [], []
    fused_hits: dict[float, list[bool]] = {w: [] for w in weights}
    for session in sessions:
        video = dataset.videos[session["video_id"]]
        skus = list(session["steps"])
        fps = float(session["steps"][skus[0]]["fps"])
        put = np.array([session["steps"][sku][PUT] for sku in skus])  # (P, L)
        pictures = catalog_pictures(dataset, skus)
        frames = list(iter_video_frames(dataset.video_path(video.video_id), 1.0))
        own = model_boxes(session) if boxes_from == "model" else None
        for handling in put_handlings(session["spans"]):
            seconds = {
                round(b.t): b.box
                for b in video.boxes
                if b.sku == handling.sku
                and abs(b.t - round(b.t)) < 1e-3
                and handling.start - 1e-6 <= b.t < handling.end - 1e-6
                and round(b.t) < len(frames)
            }
            if not seconds or handling.sku not in skus:
                continue
            if own is not None:  # the same seconds, cut where the model places the item
                seconds = {k: tuple(own[k]) for k in seconds if k < len(own)}
            crops = np.stack([square_crop(frames[k], box, CROP_SIZE) for k, box in seconds.items()])
            votes = template_votes(crops, pictures)
            lo, hi = int(np.floor(handling.put_start * fps)), int(np.ceil(handling.put_end * fps))
            peak = put[:, lo : hi + 1].max(axis=1)
            truth = skus.index(handling.sku)
            model_hits.append(int(np.argmax(peak)) == truth)
            template_hits.append(int(np.argmax(votes)) == truth)
            for weight in weights:
                fused_hits[weight].append(fused_choice(peak, votes, weight) == truth)
    count = len(model_hits)
    return {
        "puts": count,
        "model_top1": float(np.mean(model_hits)) if count else None,
        "template_top1": float(np.mean(template_hits)) if count else None,
        "fused": [
            {"weight": w, "top1": float(np.mean(hits)) if count else None}
            for w, hits in fused_hits.items()
        ],
    }


def catalog_pictures(dataset: Dataset, skus: Sequence[str]) -> np.ndarray:
    """The products' catalog pictures ``(P, s, s, 3)`` at the crops' size, in ``skus`` order."""
    images = load_catalog_images(dataset, skus)
    return np.stack([picture_at(images[sku], CROP_SIZE) for sku in skus])


def kept_answers(path: Path, sessions: int | None, *, with_boxes: bool) -> list[dict[str, Any]]:
    """The first ``sessions`` (None: all) sessions kept by ``reconcile_decode --answers``;
    a ``ValueError`` if the file holds something else or (``with_boxes``) lacks the model's
    boxes."""
    kept = json.loads(path.read_text())
    if not isinstance(kept, list) or not all(isinstance(s, dict) for s in kept):
        raise ValueError(f"{path} is not a list of sessions kept by reconcile_decode --answers")
    kept = kept[:sessions]
    if with_boxes and any("boxes" not in s for s in kept):
        raise ValueError(f"{path} has no boxes: keep them again with reconcile_decode")
    return list(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--answers", type=Path, required=True, help="kept by reconcile_decode")
    parser.add_argument("--weights", default="0.05,0.1,0.2,0.5,1,2")
    parser.add_argument("--sessions", type=int, default=None, help="only the first N")
    parser.add_argument(
        "--boxes",
        choices=("annotation", "model"),
        default="annotation",
        help="cut the crops at the annotation's boxes or at the model's answers' (kept by "
        "reconcile_decode --answers)",
    )
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        sessions = kept_answers(args.answers, args.sessions, with_boxes=args.boxes == "model")
    except ValueError as error:
        parser.error(str(error))
    weights = [float(w) for w in args.weights.split(",")]
    print(json.dumps(identify(sessions, read_dataset(args.data), weights, args.boxes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
