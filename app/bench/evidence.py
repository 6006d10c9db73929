"""Evidence thumbnails per session against its length, under the ``CARTMEM_EVIDENCE_*``
settings in force (defaults: 1 a second, 160 px, at most 1,200 and 4 MiB).

A synthetic session is drawn once into the cache, read at the memory's rate (the frames
ingest samples) and fed to the thumbnail keeper sample by sample, as ingest feeds it; at
each length the kept count, bytes and spacing are printed, one JSON line each. The
keeper's result is the one an ingest run stores (``tests/app/ingest/test_engine.py``
compares them), so no model or database is needed.

    python -m app.bench.evidence --minutes 20 --cache DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.bench.synthetic import SessionSpec, cached_session
from app.ingest.thumbnails import ThumbnailKeeper, ThumbnailPolicy
from app.settings import Settings
from model.synth.video_io import iter_video_frames

MEMORY_FPS = 1.0  # the shipped presets' rate


def measure(video: Path, settings: Settings, at_minutes: list[float]) -> list[dict[str, Any]]:
    """Kept thumbnails after each of ``at_minutes`` (ascending) of ``video``."""
    keeper = ThumbnailKeeper(ThumbnailPolicy.of(settings, MEMORY_FPS), MEMORY_FPS)
    rows: list[dict[str, Any]] = []
    marks = [round(m * 60 * MEMORY_FPS) for m in at_minutes]
    for k, frame in enumerate(iter_video_frames(video, MEMORY_FPS)):
        keeper.take(k, frame[None])
        if k + 1 in marks:
            kept = len(keeper.sizes)
            rows.append(
                {
                    "minutes": (k + 1) / MEMORY_FPS / 60,
                    "thumbnails": kept,
                    "bytes": keeper.total_bytes,
                    "mean_bytes": round(keeper.total_bytes / max(kept, 1)),
                    "spacing_s": keeper.step / MEMORY_FPS,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cartmem" / "bench")
    args = parser.parse_args(argv)
    session = cached_session(
        args.cache, SessionSpec(minutes=args.minutes, questions=1, seed=args.seed)
    )
    settings = Settings.from_env()
    marks = sorted({m for m in (1, 2, 5, 10, 20, 30, 60) if m < args.minutes} | {args.minutes})
    print(json.dumps({"video": str(session.video), "settings": _evidence_settings(settings)}))
    for row in measure(session.video, settings, marks):
        print(json.dumps(row))
    return 0


def _evidence_settings(settings: Settings) -> dict[str, Any]:
    names = (
        "evidence_fps",
        "evidence_width",
        "evidence_max_frames",
        "evidence_max_bytes_per_session",
    )
    return {name: getattr(settings, name) for name in names}


if __name__ == "__main__":
    raise SystemExit(main())
