"""`cartmem publish`: send a video file or a live camera to Kafka as a store system would."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from app import contract
from app.cli._output import emit, json_option
from app.publish import publish_video
from app.publish_live import LiveOptions, LiveReport, is_live_source, publish_live


@click.command()
@click.argument("source", metavar="VIDEO_OR_URL")
@click.option("--session", "session_id", required=True, help="Session id (the Kafka key).")
@click.option(
    "--camera",
    default="cam-0",
    show_default=True,
    help="Camera id header; each camera of a session (up to four) runs its own publish.",
)
@click.option("--chunk-seconds", type=click.FloatRange(0.5, 60), default=4.0, show_default=True)
@click.option("--realtime", is_flag=True, help="Pace chunks at wall-clock speed.")
@click.option(
    "--max-height",
    type=click.IntRange(min=2),
    default=None,
    help="Rows of video that has to be re-encoded [default: CARTMEM_PUBLISH_MAX_HEIGHT, 480].",
)
@click.option(
    "--until",
    "until_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Live sources: end the session after S seconds of video [default: at Ctrl-C].",
)
@click.option(
    "--rtsp-transport",
    type=click.Choice(["tcp", "udp"]),
    default="tcp",
    show_default=True,
    help="Live RTSP sources: how the camera sends its packets.",
)
@click.option(
    "--no-reconnect",
    is_flag=True,
    help="Live sources: end the session when the stream ends or fails instead of reopening it.",
)
@click.option("--store-id", default=None, help="Store id for the session_start payload.")
@click.option(
    "--cameras",
    default=None,
    metavar="ID,ID,...",
    help="Every camera of the session (up to four), declared in its session_start: ingest "
    "waits for each of them from the start, and their slots follow this order.",
)
@click.option(
    "--candidate-sku", "candidate_skus", multiple=True, help="A SKU the session may hold (repeat)."
)
@json_option
@click.pass_obj
def publish(
    app,
    source: str,
    session_id: str,
    camera: str,
    chunk_seconds: float,
    realtime: bool,
    max_height: int | None,
    until_s: float | None,
    rtsp_transport: str,
    no_reconnect: bool,
    store_id: str | None,
    cameras: str | None,
    candidate_skus: tuple[str, ...],
    as_json: bool,
) -> None:
    """Cut VIDEO_OR_URL into self-contained chunks and send the session to CARTMEM_TOPIC.

    A file is sent whole; a live source (rtsp://, http(s):// or HLS, rtmp://, srt://,
    udp://, or a /dev/video device) is streamed as the camera records it, reconnecting
    when it drops, until --until seconds of video or Ctrl-C, then the session ends.
    """
    info: dict[str, object] = {}
    if store_id:
        info["store_id"] = store_id
    if candidate_skus:
        info["candidate_skus"] = list(candidate_skus)
    if cameras:
        info["cameras"] = [c.strip() for c in cameras.split(",") if c.strip()]
        try:
            contract.check_cameras(info["cameras"])
        except contract.ContractError as exc:
            raise click.BadParameter(str(exc), param_hint="--cameras") from None
    if is_live_source(source):
        options = LiveOptions(
            camera=camera,
            chunk_seconds=chunk_seconds,
            max_height=max_height or app.settings.publish_max_height,
            until_s=until_s,
            rtsp_transport=rtsp_transport,
            reconnect=not no_reconnect,
        )
        _publish_live(app, source, session_id, options, info, as_json)
        return
    video = Path(source)
    if not video.is_file():
        raise click.BadParameter(
            f"{source} is not a video file or a live URL.", param_hint="SOURCE"
        )
    if until_s is not None:
        raise click.UsageError("--until is for live sources; a file is sent whole.")
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


def _publish_live(
    app, source: str, session_id: str, options: LiveOptions, info: dict, as_json: bool
) -> None:
    stop = {"asked": False}

    def ask_to_stop(*_: object) -> None:
        stop["asked"] = True

    previous = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = publish_live(
            app.settings,
            source,
            session_id,
            options,
            start_info=info,
            should_stop=lambda: stop["asked"],
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    emit(report, as_json, lambda out: out.print(_live_summary(report)))


def _live_summary(r: LiveReport) -> str:
    lost = sum((o["to"] or r.seconds) - o["from"] for o in r.outages)
    return (
        f"sent session {r.session_id} from camera {r.camera} to {r.topic}: {r.chunks} chunks, "
        f"{r.seconds:.1f} s of video, {r.bytes_sent / 1e6:.1f} MB; ended by {r.ended_by}; "
        f"{len(r.outages)} outages ({lost:.1f} s without video)"
    )
