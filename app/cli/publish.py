"""`cartmem publish`: send a video file to Kafka as a store system would."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli._output import emit, json_option
from app.publish import publish_video


@click.command()
@click.argument("video", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--session", "session_id", required=True, help="Session id (the Kafka key).")
@click.option("--camera", default="cam-0", show_default=True, help="Camera id header.")
@click.option("--chunk-seconds", type=click.FloatRange(0.5, 60), default=4.0, show_default=True)
@click.option("--realtime", is_flag=True, help="Pace chunks at wall-clock speed.")
@click.option(
    "--max-height",
    type=click.IntRange(min=2),
    default=None,
    help="Rows of video that has to be re-encoded [default: CARTMEM_PUBLISH_MAX_HEIGHT, 480].",
)
@click.option("--store-id", default=None, help="Store id for the session_start payload.")
@click.option(
    "--candidate-sku", "candidate_skus", multiple=True, help="A SKU the session may hold (repeat)."
)
@json_option
@click.pass_obj
def publish(
    app,
    video: Path,
    session_id: str,
    camera: str,
    chunk_seconds: float,
    realtime: bool,
    max_height: int | None,
    store_id: str | None,
    candidate_skus: tuple[str, ...],
    as_json: bool,
) -> None:
    """Cut VIDEO into self-contained chunks and send the session to CARTMEM_TOPIC."""
    info: dict[str, object] = {}
    if store_id:
        info["store_id"] = store_id
    if candidate_skus:
        info["candidate_skus"] = list(candidate_skus)
    with click.progressbar(length=0, label="publishing", file=sys.stderr) as bar:
        report = publish_video(
            app.settings,
            video,
            session_id,
            camera=camera,
            chunk_seconds=chunk_seconds,
            realtime=realtime,
            max_height=max_height,
            start_info=info,
            on_message=lambda _m: bar.update(1),
        )
    emit(
        report,
        as_json,
        lambda out: out.print(
            f"sent session {report.session_id} to {report.topic}: {report.chunks} chunks "
            f"({report.reencoded_chunks} re-encoded), {report.bytes_sent / 1e6:.1f} MB"
        ),
    )
