"""`cartmem ingest`: the consumer that writes session memories."""

from __future__ import annotations

from pathlib import Path

import click

from app import process
from app.cli._output import emit, json_option


@click.command()
@click.option("--max-messages", type=click.IntRange(1), default=None, help="Stop after N records.")
@click.option(
    "--until-idle",
    "until_idle",
    type=click.FloatRange(0.1),
    default=None,
    help="Stop once caught up: S seconds without records and nothing left on the broker. "
    "A broker that stays unreachable ends the run with an error instead.",
)
@click.option(
    "--video",
    "videos",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Read this file instead of Kafka (repeat; the session id is the file name).",
)
@json_option
@click.pass_obj
def ingest(
    app, max_messages: int | None, until_idle: float | None, videos: tuple[Path, ...], as_json: bool
) -> None:
    """Consume camera chunks into session memories (Kafka group CARTMEM_GROUP, or --video files).

    Commits every CARTMEM_COMMIT_INTERVAL_S seconds and on SIGTERM, then exits.
    """
    from app.ingest.service import run_ingest  # late: loads torch

    process.skip_teardown_at_exit()

    stats = run_ingest(
        app.settings, videos=videos, max_messages=max_messages, until_idle_s=until_idle
    )
    emit(
        stats,
        as_json,
        lambda out: out.print(
            f"applied {stats.applied} records: {stats.clips} clips written, "
            f"{stats.sessions_closed} sessions closed, {stats.duplicates} duplicates skipped, "
            f"{stats.dead_letters} dead letters, {stats.commits} commits"
        ),
    )
