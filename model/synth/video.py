"""One synthetic video: build its world from its seed, render it into H.264, annotate it.

Boxes are recorded from the renderer while the video is written, from the very pixels
that go into the encoder, so the annotation can only disagree with the video by what
the H.264 encoding loses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.synth.catalog import CatalogItem
from model.synth.config import GENERATOR_VERSION, SynthConfig
from model.synth.distractors import SKIN_TONES, Distractors, schedule_distractors
from model.synth.hand import HandLook
from model.synth.products import hsv_colour
from model.synth.records import BoxRecord, Event, Span, VideoAnnotation
from model.synth.render import PixelBox, Renderer
from model.synth.scene import Store
from model.synth.script import VideoScript, build_script
from model.synth.seeding import rng_for
from model.synth.video_io import VideoWriter


@dataclass(frozen=True)
class VideoPlan:
    """Which video to make: its id, split, own seed and length, and its store's id in a
    multi-store dataset."""

    video_id: str
    split: str
    seed: int
    num_frames: int
    store: str | None = None

    @property
    def relative_path(self) -> str:
        return f"videos/{self.video_id}.mp4"


@dataclass(frozen=True)
class VideoWorld:
    """Everything needed to render any frame of a planned video."""

    plan: VideoPlan
    store: Store
    script: VideoScript
    distractors: Distractors
    renderer: Renderer


def build_world(
    plan: VideoPlan, catalog: tuple[CatalogItem, ...], config: SynthConfig
) -> VideoWorld:
    """The store, script and distractors of ``plan``; a pure function of its seed."""
    store = Store(rng_for(plan.seed, "store"), catalog, config)
    script = build_script(rng_for(plan.seed, "script"), store, config, plan.num_frames)
    distractors = schedule_distractors(
        rng_for(plan.seed, "distractors"), [c.sku for c in catalog], config, plan.num_frames
    )
    rng = rng_for(plan.seed, "hand")
    hand = HandLook(
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        sleeve=hsv_colour(
            float(rng.random()), float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.3, 0.8))
        ),
        scale=config.video.height * float(rng.uniform(0.085, 0.105)),
    )
    return VideoWorld(
        plan, store, script, distractors, Renderer(store, script, distractors, hand, plan.seed)
    )


def write_video(
    world: VideoWorld,
    root: Path,
    config: SynthConfig,
    on_frame: Callable[[int], None] | None = None,
) -> VideoAnnotation:
    """Render every frame into ``root/videos/<id>.mp4`` and return the video's annotation.

    ``on_frame(frame_index)`` is called after each frame (for progress reporting).
    """
    video = config.video
    step = video.fps // video.box_fps
    boxes: list[BoxRecord] = []
    path = root / world.plan.relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, video) as writer:
        for frame in range(world.plan.num_frames):
            rendered = world.renderer.render(frame)
            writer.write(rendered.image)
            if frame % step == 0 and rendered.action is not None:
                if rendered.box is None:  # cannot happen with the default geometry
                    raise RuntimeError(f"frame {frame}: handled product not drawn")
                boxes.append(
                    BoxRecord(
                        t=_seconds(frame, video.fps),
                        activity=rendered.action.activity,
                        sku=rendered.action.sku,
                        box=normalize_box(rendered.box, video.width, video.height),
                    )
                )
            if on_frame is not None:
                on_frame(frame)
    return annotate(world, config, tuple(boxes))


def annotate(
    world: VideoWorld, config: SynthConfig, boxes: tuple[BoxRecord, ...]
) -> VideoAnnotation:
    """The annotation record of a rendered video."""
    fps, plan = config.video.fps, world.plan
    spans = tuple(
        Span(a.activity, a.sku, _seconds(a.start, fps), _seconds(a.end, fps))
        for a in world.script.actions
    )
    events = [
        Event(kind, _seconds(s, fps), _seconds(e, fps)) for kind, s, e in world.distractors.events()
    ]
    events += [
        Event("empty_reach", _seconds(r.start, fps), _seconds(r.end, fps))
        for r in world.script.reaches
    ]
    return VideoAnnotation(
        video_id=plan.video_id,
        split=plan.split,
        video=plan.relative_path,
        width=config.video.width,
        height=config.video.height,
        fps=float(fps),
        num_frames=plan.num_frames,
        duration=_seconds(plan.num_frames, fps),
        box_fps=float(config.video.box_fps),
        spans=spans,
        boxes=boxes,
        basket=world.script.basket(),
        events=tuple(sorted(events, key=lambda e: (e.start, e.kind))),
        seed=plan.seed,
        generator=GENERATOR_VERSION,
        store=plan.store,
    )


def normalize_box(box: PixelBox, width: int, height: int) -> tuple[float, float, float, float]:
    """Pixel ``(x0, y0, x1, y1)`` (end exclusive) to normalized ``(cx, cy, w, h)``."""
    x0, y0, x1, y1 = box
    return (
        round((x0 + x1) / 2 / width, 5),
        round((y0 + y1) / 2 / height, 5),
        round((x1 - x0) / width, 5),
        round((y1 - y0) / height, 5),
    )


def _seconds(frame: int, fps: int) -> float:
    return round(frame / fps, 3)
