"""The demo's timeline picture: per product, what the model says happened and when."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLOURS = {
    "take_from_shelf": "#4c78a8",
    "put_in_cart": "#54a24b",
    "inspect": "#eeca3b",
    "return_to_shelf": "#e45756",
    "take_out_of_cart": "#b279a2",
}


def draw_timeline(
    path: Path, reconciliation: dict[str, Any], truth: Sequence[Any], duration: float
) -> Path:
    """One row per product the model expects or the till scanned; thick bars are the model's
    events (time answers where it gave one, else the window it saw them in), thin lines
    under them the ground truth the synthetic session was drawn from."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skus = sorted(
        {b["sku"] for b in reconciliation["expected"]}
        | {s["sku"] for s in reconciliation["scanned"]}
        | {d["sku"] for d in reconciliation["discrepancies"]}
    )
    flagged = {d["sku"]: d["kind"] for d in reconciliation["discrepancies"]}
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * max(1, len(skus))))
    for row, sku in enumerate(skus):
        belief = next((b for b in reconciliation["expected"] if b["sku"] == sku), None)
        for event in (belief or {}).get("events", []):
            timed = event.get("start") is not None
            start, end = (event["start"], event["end"]) if timed else (event["from"], event["to"])
            ax.broken_barh(
                [(start, max(0.5, end - start))],
                (row - 0.3, 0.4),
                color=COLOURS.get(event["activity"], "grey"),
            )
        for s in truth:
            if s.sku == sku:
                ax.broken_barh(
                    [(s.start, s.end - s.start)],
                    (row + 0.15, 0.1),
                    color=COLOURS.get(s.activity, "grey"),
                )
    labels = [
        f"{sku}  ({flagged[sku].replace('_', ' ')})" if sku in flagged else sku for sku in skus
    ]
    ax.set_yticks(range(len(skus)), labels)
    for tick, sku in zip(ax.get_yticklabels(), skus, strict=True):
        if sku in flagged:
            tick.set_color("#c0392b")
    ax.set_xlim(0, duration)
    ax.set_ylim(-0.6, len(skus) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("seconds from session start")
    ax.set_title("What the model saw, per product (thin lines: ground truth)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
    ax.legend(
        handles,
        [a.replace("_", " ") for a in COLOURS],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25),
        ncol=5,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
