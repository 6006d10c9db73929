"""Printing for the CLI: a table or report for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | Path):
        return str(value)
    return value


def emit(value: Any, as_json: bool, human: Callable[[Console], None]) -> None:
    """Print ``value`` as JSON, or let ``human`` draw it on a console."""
    if as_json:
        click.echo(json.dumps(to_jsonable(value), indent=2, sort_keys=True))
        return
    human(_console())


def table(title: str, columns: Sequence[str], rows: Iterable[Iterable[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for name in columns:
        t.add_column(name, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def _console() -> Console:
    # soft_wrap keeps long values (URLs, hashes) whole for copy and paste
    return Console(soft_wrap=True, highlight=False)
