"""Checkout reconciliation on synthetic sessions with known baskets and one planted unscanned
product each: how often is the planted product flagged (recall), and how many flags are real
(precision)?

The production path end to end: held-out synthetic videos go through the ingest engine
(file source, temporary SQLite) with the session-closed hook, the till scans the true
basket minus one planted item, and the answer worker, with the after-batch hook, answers
every round of reconciliation questions until each session has its row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app import catalog as catalog_ops
from app import db as database_ops
from app.answer import AnswerWorker
from app.bench.machine import describe_machine
from app.bench.planting import plant
from app.db import Database
from app.ingest import FileSource, IngestEngine
from app.model_runtime import load_model
from app.reconcile import (
    DEFAULT_CAP,
    ORIGIN,
    ReconciliationReport,
    add_scan,
    answer_batch_hook,
    reconcile_now,
    session_closed_hook,
)
from app.reconcile.flag_confidence import reliability
from app.settings import Settings
from model.synth import ACTIVITIES, SynthConfig, generate_dataset, read_dataset
from storage.reconciliations import session_queries

THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.0, 1.0, 0.05))


@dataclasses.dataclass(frozen=True)
class Trial:
    """One session: its true basket, what the till scanned and the product left unscanned."""

    session_id: str
    video: Path
    basket: dict[str, int]
    scans: dict[str, int]
    planted: str
    spans: tuple[tuple[str, str, float, float], ...]  # (activity, sku, start, end)
    sold: tuple[str, ...]  # the products of the session's store: its candidate_skus


@dataclasses.dataclass(frozen=True)
class Product:
    sku: str
    name: str
    image: Path


def make_trials(
    root: Path,
    sessions: int,
    minutes: float,
    seed: int,
    *,
    stores: int = 1,
    split: str = "test",
) -> tuple[list[Trial], list[Product]]:
    """Held-out (test-split) synthetic sessions with a non-empty basket, one item planted each.

    The dataset seed fixes the catalogs: the training seed gives new sessions of the
    stores trained on; another seed, stores whose products no training saw (with
    ``stores`` > 1, several of them). The videos come from the test split, which training
    never reads. A dataset already in ``root`` is used as it is (drawing 20-minute sessions
    takes longer than evaluating them), and ``split`` picks its sessions ("val": the
    validation stores a flag threshold is chosen on).
    """
    if not (root / "dataset.json").exists():
        spare = max(2, sessions // 4)  # a few sessions end with an empty cart: nothing to plant
        generate_dataset(
            root,
            videos=sessions + spare,
            minutes=minutes,
            seed=seed,
            config=SynthConfig.held_out(),
            stores=stores,
        )
    data = read_dataset(root)
    rng = np.random.default_rng(seed)
    trials: list[Trial] = []
    for video in data.videos_in(split):
        if not video.basket or len(trials) == sessions:
            continue
        planted, scans = plant(video.basket, rng)
        trials.append(
            Trial(
                f"eval-{video.video_id}",
                data.video_path(video.video_id),
                dict(video.basket),
                scans,
                planted,
                tuple((s.activity, s.sku, s.start, s.end) for s in video.spans),
                data.skus_of(video.video_id),
            )
        )
    if len(trials) < sessions:
        raise SystemExit(f"only {len(trials)} sessions have a non-empty basket; ask for fewer.")
    catalog = [Product(e.sku, e.name, data.image_path(e.sku)) for e in data.catalog]
    return trials, catalog


#: per session, every activity answer reconciliation got: (sku, from, to, scores)
WindowAnswers = dict[str, list[tuple[str, float, float, dict[str, float]]]]


def run_pipeline(
    settings: Settings, trials: list[Trial], catalog: list[Product], cap: int
) -> tuple[dict[str, ReconciliationReport], WindowAnswers, dict[str, Any]]:
    """Ingest, scan, answer: the reports, the activity answers and where the time went."""
    database_ops.upgrade(settings)
    database = Database(settings)
    model = load_model(settings)
    for p in catalog:
        catalog_ops.add_product(database, p.sku, name=p.name, image_path=p.image)
    began = time.perf_counter()
    # each session_start names its store's products, as a store's system would: a
    # multi-store catalog holds every store's products, and a session is checked for its own
    source = FileSource(
        [(t.video, t.session_id) for t in trials],
        chunk_seconds=4.0,
        start_infos={t.session_id: {"candidate_skus": list(t.sold)} for t in trials},
    )
    hook = session_closed_hook(database, cap=cap, evidence=settings.reconcile_evidence)
    # every record, not "until idle": with many sessions on few cores the engine can sit
    # longer than any idle limit applying a backlog while the source is paused
    IngestEngine(settings, database, model, source, on_session_closed=hook).run(
        max_messages=source.lag()
    )
    ingest_s = time.perf_counter() - began
    for t in trials:
        for sku, qty in t.scans.items():
            add_scan(database, t.session_id, sku, qty=qty)
    began = time.perf_counter()
    worker = AnswerWorker(
        settings, database, model, after_batch=answer_batch_hook(database, min_confidence=0.0)
    )
    stats = worker.run(until_idle_s=2.0)
    answer_s = time.perf_counter() - began
    reports = {t.session_id: reconcile_now(database, t.session_id) for t in trials}
    with database.session() as db:
        windows = {
            t.session_id: [
                (q.params["sku"], q.params["from"], q.params["to"], a.payload["scores"])
                for q, a in session_queries(db, t.session_id, origin=ORIGIN)
                if q.kind == "activity" and a is not None
            ]
            for t in trials
        }
    database.dispose()
    unfinished = [sid for sid, r in reports.items() if r.state != "done"]
    if unfinished:
        raise SystemExit(f"sessions left without a reconciliation: {', '.join(unfinished)}")
    timing = {
        "ingest_seconds": round(ingest_s, 1),
        "answer_seconds": round(answer_s, 1),
        "questions": stats.answered + stats.failed,
        "failed_questions": stats.failed,
        "answer_batches": stats.batches,
        "device": model.device,
        "model_version": model.version,
        "checkpoint": str(model.checkpoint),
    }
    return reports, windows, timing


def score(
    trials: list[Trial],
    reports: dict[str, ReconciliationReport],
    windows: WindowAnswers,
    min_confidence: float = 0.0,
) -> dict[str, Any]:
    """Recall of the planted item, precision of the flags (discrepancies from
    ``min_confidence`` on, as the setting makes the service write them; the curve
    ``by_min_confidence`` shows every threshold), how often the flags of each confidence
    were real (``reliability``), how good the baskets were, and how well
    the activity answers separate (window, product) pairs with an activity from those
    without (what every count rests on)."""
    rows: list[dict[str, Any]] = []
    flags: list[tuple[float, bool]] = []  # (confidence, real) of every flag
    basket_tp = basket_fp = basket_fn = exact = 0
    for t in trials:
        r = reports[t.session_id]
        mine: list[dict[str, Any]] = []
        for d in r.discrepancies:
            if d.confidence < min_confidence:
                continue
            real = d.sku == t.planted and d.expected > d.scanned
            flags.append((d.confidence, real))
            mine.append(
                {
                    "sku": d.sku,
                    "kind": d.kind.value,
                    "confidence": d.confidence,
                    "expected": d.expected,
                    "scanned": d.scanned,
                    "real": real,
                }
            )
        expected = {b.sku: b.qty for b in r.expected}
        basket_tp += len(set(expected) & set(t.basket))
        basket_fp += len(set(expected) - set(t.basket))
        basket_fn += len(set(t.basket) - set(expected))
        exact += expected == t.basket
        rows.append(
            {
                "session": t.session_id,
                "basket": t.basket,
                "scans": t.scans,
                "planted": t.planted,
                "planted_flagged": any(f["real"] for f in mine),
                "expected": expected,
                "flags": mine,
                "questions": r.questions.asked,
                # a flagger as busy but blind: the chance that this many under-scan flags,
                # spread at random over the products checked, hit the planted one
                "chance_recall": sum(f["expected"] > f["scanned"] for f in mine)
                / max(1, len({sku for sku, *_ in windows[t.session_id]})),
            }
        )
    n = len(trials)
    found = sum(row["planted_flagged"] for row in rows)
    curve = []
    for threshold in THRESHOLDS:
        kept = [real for confidence, real in flags if confidence >= threshold]
        hits = sum(kept)
        curve.append(
            {
                "min_confidence": threshold,
                "flags": len(kept),
                "precision": hits / len(kept) if kept else None,
                "recall": hits / n,
            }
        )
    false_flags = [f for row in rows for f in row["flags"] if not f["real"]]
    return {
        "sessions": n,
        "recall": found / n,
        "chance_recall": sum(row["chance_recall"] for row in rows) / n,
        "precision": sum(real for _, real in flags) / len(flags) if flags else None,
        "flags": len(flags),
        "false_flags": len(false_flags),
        "false_flags_per_session": len(false_flags) / n,
        "false_flags_by_kind": {
            kind: sum(f["kind"] == kind for f in false_flags)
            for kind in ("not_scanned", "scanned_not_taken", "quantity")
        },
        "by_min_confidence": curve,
        "reliability": reliability([c for c, _ in flags], [real for _, real in flags]),
        "separability": separability(trials, windows),
        "basket": {
            "sku_precision": basket_tp / (basket_tp + basket_fp) if basket_tp + basket_fp else None,
            "sku_recall": basket_tp / (basket_tp + basket_fn) if basket_tp + basket_fn else None,
            "exact_baskets": exact,
        },
        "per_session": rows,
    }


def separability(trials: list[Trial], windows: WindowAnswers) -> dict[str, Any]:
    """Per activity: ROC AUC of its score, positives being windows that hold the activity
    with that product whole (0.5: the answers do not tell them apart)."""
    spans = {t.session_id: t.spans for t in trials}
    out = {}
    for label in ACTIVITIES:
        pos: list[float] = []
        neg: list[float] = []
        for session_id, answers in windows.items():
            for sku, start, end, scores in answers:
                held = any(
                    (a, s) == (label, sku) and start <= s0 and s1 <= end
                    for a, s, s0, s1 in spans[session_id]
                )
                (pos if held else neg).append(scores[label])
        out[label] = {
            "auc": _auc(np.array(pos), np.array(neg)),
            "positives": len(pos),
            "negatives": len(neg),
            "mean_positive": float(np.mean(pos)) if pos else None,
            "mean_negative": float(np.mean(neg)) if neg else None,
        }
    return out


def _auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """Mann-Whitney: the chance a positive outscores a negative (ties count half)."""
    if not len(pos) or not len(neg):
        return None
    values = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # average 1-based rank of tied values
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    curve = [c for c in results["by_min_confidence"] if c["precision"] is not None]
    rows = results["per_session"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x = [c["min_confidence"] for c in curve]
    left.plot(x, [c["recall"] for c in curve], "o-", label="recall (planted item flagged)")
    left.plot(x, [c["precision"] for c in curve], "s-", label="precision (flags that are real)")
    left.axhline(results["chance_recall"], color="grey", ls="--", label="recall of random flags")
    left.set_xlabel("minimum flag confidence")
    left.set_ylim(-0.02, 1.02)
    left.legend()
    left.set_title(f"Reconciliation, {results['sessions']} sessions")
    ids = range(len(rows))
    real = [sum(f["real"] for f in r["flags"]) for r in rows]
    false = [sum(not f["real"] for f in r["flags"]) for r in rows]
    right.bar(ids, real, label="planted item flagged", color="tab:green")
    right.bar(ids, false, bottom=real, label="false flags", color="tab:red")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("session")
    right.set_ylabel("flags")
    right.legend()
    right.set_title(f"model {results['timing']['model_version']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(
    out: Path,
    *,
    settings: Settings,
    sessions: int,
    minutes: float,
    seed: int,
    cap: int = DEFAULT_CAP,
    stores: int = 1,
    data: Path | None = None,
    split: str = "test",
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cartmem-reconcile-") as tmp:
        workdir = Path(tmp)
        root = data or workdir / "ds"
        trials, catalog = make_trials(root, sessions, minutes, seed, stores=stores, split=split)
        drawn = json.loads((root / "dataset.json").read_text())  # what --data really holds
        state = dataclasses.replace(settings, data_dir=workdir / "state", database_url="")
        reports, windows, timing = run_pipeline(state, trials, catalog, cap)
    results = {
        "benchmark": "reconcile",
        "machine": describe_machine(),
        "dataset": {
            "seed": drawn["seed"],
            "minutes": drawn["minutes"],
            "stores": len(drawn.get("stores", ())) or 1,
            "split": split,
        },
        "evidence": settings.reconcile_evidence,
        "timing": timing,
        "min_confidence": settings.reconcile_min_confidence,
        **score(trials, reports, windows, settings.reconcile_min_confidence),
    }
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "reconcile.png")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (fixes the catalog)")
    parser.add_argument("--stores", type=int, default=1, help="spread the sessions over stores")
    parser.add_argument(
        "--data", type=Path, default=None, help="sessions drawn before (`cartmem synth`)"
    )
    parser.add_argument("--split", default="test", help="which sessions of --data")
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        help="flag threshold (default: CARTMEM_RECONCILE_MIN_CONFIDENCE)",
    )
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP)
    parser.add_argument("--checkpoint", default=None, help="default: CARTMEM_CHECKPOINT_PATH")
    parser.add_argument(
        "--evidence",
        choices=("windows", "steps", "cart"),
        default=None,
        help="how events are read (default: CARTMEM_RECONCILE_EVIDENCE)",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.checkpoint:
        settings = dataclasses.replace(settings, checkpoint_path=args.checkpoint)
    if args.min_confidence is not None:
        settings = dataclasses.replace(settings, reconcile_min_confidence=args.min_confidence)
    if args.evidence:
        settings = dataclasses.replace(settings, reconcile_evidence=args.evidence)
    results = run(
        args.out,
        settings=settings,
        sessions=args.sessions,
        minutes=args.minutes,
        seed=args.seed,
        cap=args.cap,
        stores=args.stores,
        data=args.data,
        split=args.split,
    )
    results["command"] = "python -m app.bench.reconcile_eval " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    (args.out / "reconcile.json").write_text(json.dumps(results, indent=2) + "\n")
    keys = ("sessions", "recall", "chance_recall", "precision", "false_flags")
    summary = {k: results[k] for k in keys}
    print(json.dumps(summary | {"basket": results["basket"], "timing": results["timing"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
