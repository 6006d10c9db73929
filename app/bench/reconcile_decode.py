"""Reconciliation's decoding compared offline: the same answers, read into baskets each way.

``reconcile_eval`` measures the production path end to end (Kafka-less file ingest, the
query queue, the hooks), which takes minutes per run. The choice between ways of reading
per-step answers into baskets needs many runs over the same answers, so this tool asks the
model directly: each session is written once into its memory from the token cache (the
path ``cartmem eval`` takes), every product of its store gets its whole-session question
with per-step answers, and each decoder turns those answers into beliefs and flags against
scans that leave one item unscanned, planted as ``reconcile_eval`` plants it; each counted
event is also checked against the annotation (its product's put or take-out, a look-alike's,
its product doing something else, nothing) to show where a decoder's counts go wrong. Use it on
validation or tuning sets only; held-out figures come from ``reconcile_eval``.

    python -m app.bench.reconcile_decode --data DATA --split val --checkpoint RUN --answers A
    python -m app.bench.reconcile_decode --from-answers A --average-with B [--average-with C]
        [--geometric] [--keep-average E]

``--answers`` keeps the answers so that later runs read them without the model;
``--average-with`` (given once or more) reads models' answers averaged step by step (their
mistakes differ), by their mean or (``--geometric``) their geometric mean; ``--keep-average``
keeps those.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.bench.planting import plant
from app.bench.scan_repair import scan_repaired_beliefs
from app.reconcile.basket import NAMING, Belief, belief, step_events
from app.reconcile.compare import compare
from app.reconcile.exclusive import one_product_per_moment
from model.pair_naming import geometric_mean

#: decoder name -> beliefs of every product from its per-step answers (and the scans, for
#: ``scan-repair``, a measurement of what the scans can explain: ``app.bench.scan_repair``)
DECODERS = ("independent", "one-product", "scan-repair")


def beliefs_of(
    decoder: str, steps: Mapping[str, dict[str, Any]], scans: Mapping[str, int]
) -> list[Belief]:
    if decoder == "scan-repair":
        return scan_repaired_beliefs(steps, scans)
    events = {sku: step_events(payload, 0.0) for sku, payload in steps.items()}
    if decoder == "one-product":
        events = one_product_per_moment(events)
    return [belief(sku, e) for sku, e in events.items()]


def session_steps(data: Path, split: str, checkpoint: Path) -> list[dict[str, Any]]:
    """Per session of ``split``: basket, spans, each store product's per-step answer, and
    per activity the model's per-step box of the object it involves (its object question)."""
    from model.data.split import load_catalog_images, load_split
    from model.data.token_cache import TokenCache, default_cache_dir
    from model.evaluate.two_stage import populate
    from model.network import LongVMNet
    from model.queries import (
        ActivityPrediction,
        ActivityQuery,
        ObjectPrediction,
        ObjectQuery,
        Query,
    )
    from model.synth.reader import read_dataset

    net = LongVMNet.load(checkpoint)
    dataset = read_dataset(data)
    cache = TokenCache(default_cache_dir(data), net.cfg, net.backbone)
    split_data = load_split(dataset, split, net.cfg, cache)
    memories = populate(net, split_data)
    out = []
    for video_id, memory in memories.items():
        skus = dataset.skus_of(video_id)
        images = load_catalog_images(dataset, skus)
        steps = int(split_data.tokens[video_id].shape[0])
        queries = [ActivityQuery(0, images[sku], 0, steps) for sku in skus]
        labels = net.cfg.activity_labels
        asked: list[Query] = [*queries, *(ObjectQuery(0, k, 0, steps) for k in range(len(labels)))]
        answers = net.answer(memory, asked)
        boxes = {}
        for label, found in zip(labels, answers[len(queries) :], strict=True):
            assert isinstance(found, ObjectPrediction)
            boxes[label] = [[round(float(v), 5) for v in box] for box in found.boxes]
        per_sku = {}
        for sku, answer in zip(skus, answers[: len(queries)], strict=True):
            assert isinstance(answer, ActivityPrediction) and answer.steps is not None
            payload: dict[str, Any] = {"fps": net.cfg.fps}
            for k, label in enumerate(net.cfg.activity_labels):
                payload[label] = [float(v) for v in answer.steps[:, k]]
            per_sku[sku] = payload
        video = dataset.videos[video_id]
        spans = [(x.activity, x.sku, x.start, x.end) for x in video.spans]
        out.append(
            {
                "video_id": video_id,
                "basket": dict(video.basket),
                "spans": spans,
                "steps": per_sku,
                "boxes": boxes,  # activity -> (L, 4): the model's box of its object per step
            }
        )
    return out


def score(sessions: list[dict[str, Any]], decoder: str, seed: int = 0) -> dict[str, Any]:
    """Recall of the planted item and precision of the flags, as ``reconcile_eval`` counts."""
    trips: list[list[bool]] = []
    kinds: dict[str, int] = {}
    for s, planted, scans in planted_sessions(sessions, seed):
        trips.append([])
        for d in compare(beliefs_of(decoder, s["steps"], scans), scans):
            real = d.sku == planted and d.expected > d.scanned
            trips[-1].append(real)
            if not real:
                kinds[d.kind.value] = kinds.get(d.kind.value, 0) + 1
    return {"decoder": decoder, **flag_rates(trips), "false_flags_by_kind": kinds}


def flag_rates(trips: Sequence[Sequence[bool]]) -> dict[str, Any]:
    """Given, per trip, whether each of its flags is the planted item: the share of trips
    whose planted item is flagged (recall), of flags that are real, and false flags a trip.
    A trip has one planted item, so at most one real flag."""
    n = max(len(trips), 1)
    flags = sum(len(trip) for trip in trips)
    real = sum(sum(trip) for trip in trips)
    return {
        "sessions": len(trips),
        "recall": real / n,
        "precision": real / flags if flags else None,
        "false_flags_per_session": (flags - real) / n,
    }


def planted_sessions(
    sessions: list[dict[str, Any]], seed: int = 0
) -> list[tuple[dict[str, Any], str, dict[str, int]]]:
    """Each session with a basket, its planted item and the till's scans, the same on every
    call with the same seed (every decoder is judged against the same scans)."""
    rng = np.random.default_rng(seed)
    return [(s, *plant(s["basket"], rng)) for s in sessions if s["basket"]]


def with_naming(
    sessions: list[dict[str, Any]], naming: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each session's per-step answers carrying other answers of the same session under
    ``NAMING``, as a model pair's answers carry all its models' together (``model.pair``):
    what ``app.reconcile.trip.read_trip`` names and weighs the moves with."""
    by_video = {s["video_id"]: s["steps"] for s in naming}
    out = []
    for session in sessions:
        other = by_video.get(session["video_id"])
        if other is None or list(other) != list(session["steps"]):
            raise ValueError(f"no naming answers for the products of {session['video_id']}")
        steps = {
            sku: {**payload, NAMING: {k: v for k, v in other[sku].items() if k != "fps"}}
            for sku, payload in session["steps"].items()
        }
        out.append({**session, "steps": steps})
    return out


def averaged(
    first: list[dict[str, Any]], *others: list[dict[str, Any]], geometric: bool = False
) -> list[dict[str, Any]]:
    """Several models' per-step answers averaged, session by session (the same sessions):
    their mean, or (``geometric``) the n-th root of their product, which a model sure
    that a product was not handled pulls down more than the mean does."""

    def mean(rows: list[list[float]]) -> list[float]:
        if geometric:
            return [float(x) for x in geometric_mean(rows)]
        return [float(x) for x in np.mean(np.asarray(rows, dtype=np.float64), axis=0)]

    out = []
    for a, *rest in zip(first, *others, strict=True):
        for b in rest:
            if a["video_id"] != b["video_id"]:
                raise ValueError(
                    f"answers of {a['video_id']} and {b['video_id']} cannot be averaged"
                )
        steps = {
            sku: {
                k: v if k == "fps" else mean([v, *(b["steps"][sku][k] for b in rest)])
                for k, v in payload.items()
            }
            for sku, payload in a["steps"].items()
        }
        out.append({**a, "steps": steps})
    return out


#: seconds an event may lie beside an annotated span and still be that span: the answer's
#: steps are 1 s apart and its peaks drift a step or two from the annotated moment
MATCH_SLACK_S = 3.0
DIRECTIONS = {+1: "put_in_cart", -1: "take_out_of_cart"}


def event_sources(
    sessions: list[dict[str, Any]], decoder: str, seed: int = 0
) -> dict[str, dict[str, int]]:
    """Per direction, what each counted event of ``decoder`` is, checked against the spans.

    ``true``: a span of its product and direction no stronger event claimed; ``twice``: one
    already claimed (one item counted twice); ``look_alike``: another product's span of that
    direction (a confusion); ``other_activity``: a span of its own product doing something
    else; ``nothing``. ``missed`` counts the spans no event of their product claimed.
    """
    out = {label: dict.fromkeys(_SOURCES, 0) for label in DIRECTIONS.values()}
    for s, _, scans in planted_sessions(sessions, seed):
        spans = [(a, sku, float(start), float(end)) for a, sku, start, end in s["spans"]]
        for b in beliefs_of(decoder, s["steps"], scans):
            for change, label in DIRECTIONS.items():
                counts = out[label]
                own = [x for x in spans if x[0] == label and x[1] == b.sku]
                claimed: set[int] = set()
                counted = [e for e in b.events if e.counted and e.change == change]
                for e in sorted(counted, key=lambda e: -e.probability):
                    near = [i for i, x in enumerate(own) if _near(e.start, e.end, x)]
                    free = [i for i in near if i not in claimed]
                    if free:
                        claimed.add(free[0])
                        counts["true"] += 1
                    elif near:
                        counts["twice"] += 1
                    elif any(x[0] == label and _near(e.start, e.end, x) for x in spans):
                        counts["look_alike"] += 1
                    elif any(x[1] == b.sku and _near(e.start, e.end, x) for x in spans):
                        counts["other_activity"] += 1
                    else:
                        counts["nothing"] += 1
                counts["missed"] += len(own) - len(claimed)
    return out


_SOURCES = ("true", "twice", "look_alike", "other_activity", "nothing", "missed")


def _near(start: float, end: float, span: tuple[str, str, float, float]) -> bool:
    return span[2] - MATCH_SLACK_S <= end and start <= span[3] + MATCH_SLACK_S


#: flag confidence bins of ``reliability``: [lower, upper)
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.9, 1.0)


def reliability(
    sessions: list[dict[str, Any]], decoder: str, seeds: int = 5
) -> list[dict[str, Any]]:
    """Does a flag's confidence mean what it says? Per confidence bin, the flags and the share
    of them that are real, over ``seeds`` plantings of every session (more flags to bin)."""
    flags: list[tuple[float, bool]] = []
    for seed in range(seeds):
        for s, planted, scans in planted_sessions(sessions, seed):
            for d in compare(beliefs_of(decoder, s["steps"], scans), scans):
                flags.append((d.confidence, d.sku == planted and d.expected > d.scanned))
    out = []
    for lower, upper in itertools.pairwise(CONFIDENCE_BINS):
        inside = [real for c, real in flags if lower <= c < upper or (upper == 1.0 and c == 1.0)]
        share = sum(inside) / len(inside) if inside else None
        out.append({"confidence": [lower, upper], "flags": len(inside), "real": share})
    return out


def identification(sessions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per activity: at each annotated moment of it, where the handled product's own per-step
    answer ranks among its store's products (the peak over the moment's steps): the share
    ranked first and in the top 3, and the share reaching the event threshold (0.5)."""
    out = {}
    for label in ("put_in_cart", "take_out_of_cart", "take_from_shelf", "return_to_shelf"):
        ranks, reached = [], []
        for s in sessions:
            skus = list(s["steps"])
            fps = float(s["steps"][skus[0]]["fps"])
            scores = np.array([s["steps"][sku][label] for sku in skus])  # (P, L)
            for activity, sku, start, end in s["spans"]:
                if activity != label or sku not in skus:
                    continue
                moment = scores[:, int(np.floor(start * fps)) : int(np.ceil(end * fps)) + 1]
                if moment.shape[1] == 0:
                    continue
                peak = moment.max(axis=1)  # (P,)
                own = peak[skus.index(sku)]
                ranks.append(int((peak > own).sum()))
                reached.append(own >= 0.5)
        if ranks:
            r = np.array(ranks)
            out[label] = {
                "moments": len(ranks),
                "top1": float((r == 0).mean()),
                "top3": float((r < 3).mean()),
                "reaches_threshold": float(np.mean(reached)),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--split", default="val")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument(
        "--from-answers", type=Path, default=None, help="score answers kept by --answers"
    )
    parser.add_argument(
        "--average-with",
        type=Path,
        action="append",
        default=None,
        help="average the per-step answers with another model's, kept by --answers "
        "(repeat it for more models)",
    )
    parser.add_argument(
        "--geometric", action="store_true", help="average by the geometric mean, not the mean"
    )
    parser.add_argument(
        "--keep-average", type=Path, default=None, help="keep the averaged answers here"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--answers", type=Path, default=None, help="keep the answers here")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.from_answers is not None:
        sessions = json.loads(args.from_answers.read_text())
    elif args.data is None or args.checkpoint is None:
        parser.error("give --data and --checkpoint, or --from-answers")
    else:
        sessions = session_steps(args.data, args.split, args.checkpoint)
    if args.answers is not None:
        args.answers.write_text(json.dumps(sessions))
    if args.average_with is not None:
        others = [json.loads(path.read_text()) for path in args.average_with]
        try:
            sessions = averaged(sessions, *others, geometric=args.geometric)
        except ValueError as error:
            parser.error(str(error))
        if args.keep_average is not None:
            args.keep_average.write_text(json.dumps(sessions))
    elif args.geometric or args.keep_average is not None:
        parser.error("--geometric and --keep-average need --average-with")
    for decoder in DECODERS:
        print(json.dumps(score(sessions, decoder)))
        print(json.dumps({"decoder": decoder, "events": event_sources(sessions, decoder)}))
        print(json.dumps({"decoder": decoder, "reliability": reliability(sessions, decoder)}))
    print(json.dumps({"identification": identification(sessions)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
