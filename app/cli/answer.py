"""`cartmem answer`, `cartmem ask` and `cartmem queries`: questions about sessions."""

from __future__ import annotations

from typing import Any

import click

from app import process
from app.answer.requeue import requeue_failed
from app.cli._output import emit, json_option, table
from app.errors import CartmemError


@click.command()
@click.option(
    "--until-idle",
    "until_idle",
    type=click.FloatRange(0),
    default=None,
    help="Stop after S seconds without queries.",
)
@json_option
@click.pass_obj
def answer(app, until_idle: float | None, as_json: bool) -> None:
    """Answer pending queries from session memories (a long-running worker)."""
    from app.answer.service import run_answer_worker  # late: loads torch

    process.skip_teardown_at_exit()

    stats = run_answer_worker(app.settings, until_idle_s=until_idle)
    emit(
        stats,
        as_json,
        lambda out: out.print(
            f"answered {stats.answered}, failed {stats.failed}, retried {stats.retried} "
            f"in {stats.batches} batches"
        ),
    )


_common = [
    click.option("--session", "session_id", required=True),
    click.option("--from", "start", type=float, required=True, help="Seconds from session start."),
    click.option("--to", "end", type=float, required=True, help="Seconds from session start."),
    click.option("--timeout", type=click.FloatRange(0), default=30.0, show_default=True),
    click.option(
        "--inline", is_flag=True, help="Answer in this process instead of waiting for a worker."
    ),
    json_option,
]


def _with_common(f):
    for option in reversed(_common):
        f = option(f)
    return f


@click.group()
def ask() -> None:
    """Ask a question about a session and wait for the answer."""


@ask.command(name="activity")
@click.option("--sku", default=None, help="The product; without it, rank products for --activity.")
@click.option("--activity", default=None, help="With no --sku: which product had this activity.")
@click.option("--top", type=click.IntRange(1, 100), default=5, show_default=True)
@_with_common
@click.pass_obj
def ask_activity(app, sku, activity, top, session_id, start, end, timeout, inline, as_json) -> None:
    """What was done with product SKU (or: which product had ACTIVITY) in the window."""
    from app.answer.service import window

    if sku is None and activity is None:
        raise CartmemError("give --sku (what was done with it) or --activity (which product).")
    params: dict[str, Any] = window(start, end)
    params |= {"sku": sku} if sku else {"activity": activity, "top": top}
    _ask(app, "activity", session_id, params, timeout, inline, as_json)


@ask.command(name="object")
@click.option("--activity", required=True)
@_with_common
@click.pass_obj
def ask_object(app, activity, session_id, start, end, timeout, inline, as_json) -> None:
    """Where the object of ACTIVITY was, one box per step of the window."""
    from app.answer.service import window

    _ask(
        app,
        "object",
        session_id,
        window(start, end) | {"activity": activity},
        timeout,
        inline,
        as_json,
    )


@ask.command(name="time")
@click.option("--activity", required=True)
@click.option("--sku", required=True)
@_with_common
@click.pass_obj
def ask_time(app, activity, sku, session_id, start, end, timeout, inline, as_json) -> None:
    """When ACTIVITY happened to SKU within the window."""
    from app.answer.service import window

    params = window(start, end) | {"activity": activity, "sku": sku}
    _ask(app, "time", session_id, params, timeout, inline, as_json)


def _ask(app, kind, session_id, params, timeout, inline, as_json) -> None:
    from app.answer.service import ask as ask_query

    result = ask_query(
        app.settings,
        session_id=session_id,
        kind=kind,
        params=params,
        timeout_s=timeout,
        inline=inline,
    )
    if result.status == "failed":
        raise CartmemError(f"query {result.query_id} failed: {result.error}")
    emit(result, as_json, lambda out: out.print(_report(result.answer or {})))


def _report(payload: dict[str, Any]) -> Any:
    from app.answer.payloads import (
        ActivityAnswer,
        ObjectAnswer,
        ProductRanking,
        TimeAnswer,
        answer_from_json,
    )

    a = answer_from_json(payload)
    span = f"{a.answering.window_from:g}-{a.answering.window_to:g} s"
    if isinstance(a, ProductRanking):
        rows: list[tuple[str, ...]] = [(p.sku, p.name, f"{p.score:.3f}") for p in a.products]
        return table(f"which product: {a.activity}, {span}", ("sku", "name", "score"), rows)
    if isinstance(a, ActivityAnswer):
        present = set(a.present)
        rows = [
            (label, f"{p:.3f}", "yes" if label in present else "") for label, p in a.scores.items()
        ]
        return table(f"{a.sku}, {span}", ("activity", "probability", "present"), rows)
    if isinstance(a, ObjectAnswer):
        rows = [(f"{b.t:g}", *(f"{v:.3f}" for v in b.box)) for b in a.boxes]
        return table(f"{a.activity}, {span}", ("t (s)", "cx", "cy", "w", "h"), rows)
    assert isinstance(a, TimeAnswer)
    return f"{a.activity} of {a.sku}: {a.start:g}-{a.end:g} s (score {a.score:.3f})"


@click.group()
def queries() -> None:
    """Inspect the query queue."""


@queries.command(name="list")
@click.option("--status", type=click.Choice(["pending", "running", "done", "failed"]), default=None)
@click.option("--session", "session_id", default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@click.pass_obj
def list_queries(app, status, session_id, limit, as_json) -> None:
    """Newest queries first, with their status and errors."""
    from storage import query_queue

    with app.database.session() as db:
        rows = [
            {
                "id": q.id,
                "session": q.session_id,
                "kind": q.kind,
                "status": q.status,
                "attempts": q.attempts,
                "origin": q.origin,
                "params": q.params,
                "error": q.error,
            }
            for q in query_queue.list_queries(db, status=status, session_id=session_id, limit=limit)
        ]
    columns = ("id", "session", "kind", "status", "attempts", "origin", "error")
    emit(
        rows,
        as_json,
        lambda out: out.print(
            table(
                f"queries ({len(rows)})",
                columns,
                ([r[c] for c in columns] for r in rows),
            )
        ),
    )


@queries.command()
@click.option("--id", "ids", type=int, multiple=True, help="A failed query's id (repeatable).")
@click.option("--session", "session_id", default=None, help="Failed queries of this session.")
@click.option(
    "--error", "error_contains", default=None, help="Failed with an error containing TEXT."
)
@json_option
@click.pass_obj
def requeue(app, ids, session_id, error_contains, as_json) -> None:
    """Give failed queries back to the workers (attempts start again from 0), e.g. once the
    cause is fixed: a product added to the catalog, a database back. Needs a filter."""
    if not (ids or session_id or error_contains):
        raise click.UsageError("say which failed queries: --id, --session and/or --error.")
    requeued = requeue_failed(
        app.database, ids=ids, session_id=session_id, error_contains=error_contains
    )
    emit(
        {"requeued": requeued},
        as_json,
        lambda out: out.print(
            f"{len(requeued)} failed queries back in the queue"
            + (f": {', '.join(map(str, requeued))}" if requeued else "")
        ),
    )
