"""`cartmem demo`: the main job on embedded defaults, with a readable report."""

from __future__ import annotations

import sys
from typing import Any

import click

from app.cli._output import emit, json_option, table


@click.command()
@click.option(
    "--minutes",
    type=click.FloatRange(0.5, 30),
    default=2.0,
    show_default=True,
    help="Length of the shopping session.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Which synthetic store: the catalog the seed draws (the shipped model was trained "
    "on other stores, so by default on products it never saw; the session itself is "
    "always one it never saw).",
)
@json_option
@click.pass_obj
def demo(app, minutes: float, seed: int, as_json: bool) -> None:
    """Draw a shopping session, ingest it, ask questions, reconcile it against a till list
    that misses one product. Needs no Kafka or PostgreSQL (SQLite + the file source)."""
    from app.demo import run_demo  # late: loads torch

    steps = [
        "drawing",
        "setting up",
        "ingesting",
        "asking",
        "answering",
        "drawing the evidence",
        "drawing the timeline",
    ]
    with click.progressbar(length=len(steps), label="demo", file=sys.stderr, show_pos=True) as bar:

        def step(message: str) -> None:
            bar.label = message
            bar.update(1)

        report = run_demo(app.settings, minutes=minutes, seed=seed, step=step)
    emit(report, as_json, lambda out: _print(out, report))


def _print(out, r) -> None:
    out.print(
        f"[bold]session {r.session_id}[/bold]: {r.seconds_of_video:g} s of video, "
        f"model {r.model_version}"
    )
    out.print(f"video: {r.video}")
    from app.answer.payloads import (
        ActivityAnswer,
        ObjectAnswer,
        ProductRanking,
        TimeAnswer,
        answer_from_json,
    )

    a = r.answers
    typed = {name: answer_from_json(x["answer"]) for name, x in a.items() if x["answer"]}
    act = typed.get("activity")
    if isinstance(act, ActivityAnswer):
        out.print(
            table(
                f"what was done with {r.planted_missing}?",
                ("activity", "probability"),
                [(k, f"{v:.3f}") for k, v in act.scores.items()],
            )
        )
    which = typed.get("which_product")
    if isinstance(which, ProductRanking):
        p = a["which_product"]["params"]
        rows: list[tuple[Any, ...]] = [(x.sku, x.name, f"{x.score:.3f}") for x in which.products]
        out.print(
            table(
                f"which product was put in the cart between {p['from']:g} and {p['to']:g} s?",
                ("sku", "name", "score"),
                rows,
            )
        )
    obj = typed.get("object")
    if isinstance(obj, ObjectAnswer):
        rows = [(f"{b.t:g}", *(f"{v:.2f}" for v in b.box)) for b in obj.boxes]
        out.print(
            table(
                "where was the product being put in the cart? (cx, cy, w, h)",
                ("t (s)", "cx", "cy", "w", "h"),
                rows,
            )
        )
    tm = typed.get("time")
    if isinstance(tm, TimeAnswer):
        out.print(
            f"when was {r.planted_missing} put in the cart? "
            f"{tm.start:g}-{tm.end:g} s (score {tm.score:.3f})"
        )
    rec = r.reconciliation
    rows = [
        (
            b["sku"],
            b["qty"],
            f"{b['confidence']:.2f}",
            r.scanned.get(b["sku"], 0),
            r.basket_truth.get(b["sku"], 0),
        )
        for b in rec["expected"]
    ]
    out.print(
        table(
            "expected basket (from video) vs till",
            ("sku", "expected", "confidence", "scanned", "truth"),
            rows,
        )
    )
    rows = [
        (d["kind"], d["sku"], d["expected"], d["scanned"], f"{d['confidence']:.2f}")
        for d in rec["discrepancies"]
    ]
    out.print(table("discrepancies", ("kind", "sku", "expected", "scanned", "confidence"), rows))
    verdict = "[green]flagged[/green]" if r.planted_flagged else "[red]NOT flagged[/red]"
    out.print(f"the till missed {r.planted_missing}: {verdict}")
    out.print(f"timeline picture: {r.timeline_png}")
    if r.evidence_png:
        out.print(f"evidence of the {r.planted_missing} flag: {r.evidence_png}")
    out.print("timings (s): " + ", ".join(f"{k} {v:g}" for k, v in r.timings_s.items()))
