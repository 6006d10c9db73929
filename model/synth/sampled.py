"""Never-filmed stores: a few frames a second of a video, rendered without writing it.

Backbone pretraining and the crop probe learn to match a product to its catalog picture,
and how well that carries over to new stores grows with the number of stores seen
(docs/RESULTS.md). Drawing a store's whole video costs ten frames a second through the
encoder and a file; training reads one. ``sampled_store`` renders only the frames that are
read, from the very same world a dataset video of that seed would have (store, script,
hand, light, noise), passes them through the same H.264 encoder so that they carry its
losses, and annotates them like ``write_video`` does. A store costs a fraction of a second,
so a run can see thousands.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from model.synth.catalog import CatalogItem, make_store_catalog, store_id
from model.synth.config import SynthConfig, VideoConfig
from model.synth.products import reference_image
from model.synth.records import BoxRecord, VideoAnnotation
from model.synth.seeding import derive_seed
from model.synth.video import VideoPlan, annotate, build_world, normalize_box
from model.synth.video_io import VideoWriter, iter_video_frames


@dataclass(frozen=True)
class SampledStore:
    """One never-filmed store: its catalog, a video's frames at ``fps`` and their annotation."""

    catalog: tuple[CatalogItem, ...]
    pictures: np.ndarray  # (K, P, P, 3) uint8: each product's catalog image, catalog order
    frames: np.ndarray  # (N, H, W, 3) uint8: frame k shows instant k / fps
    fps: int
    annotation: VideoAnnotation  # spans of the whole video, boxes on the sampled frames


def sampled_store(
    seed: int, index: int, seconds: int, *, fps: int = 1, config: SynthConfig | None = None
) -> SampledStore:
    """Store ``index`` of the never-filmed stores drawn from ``seed``: ``seconds`` of its
    video at ``fps`` frames a second (a divisor of the video's rate).

    The catalog is ``make_store_catalog(seed, index)``: a dataset drawn from the same
    ``seed`` would sell the same products in its store ``index``, so keep ``seed`` apart
    from every dataset seed whose stores are used for validation or tests.
    """
    config = config or SynthConfig()
    video = config.video
    if fps < 1 or video.fps % fps:
        raise ValueError(f"fps must divide the video's {video.fps} frames a second, not {fps}.")
    catalog = make_store_catalog(seed, index, config.num_skus)
    plan = sampled_plan(seed, index, seconds, config)
    world = build_world(plan, catalog, config)
    step = video.fps // fps
    rendered = [world.renderer.render(frame) for frame in range(0, plan.num_frames, step)]
    boxes = tuple(
        BoxRecord(
            t=round(k / fps, 3),
            activity=r.action.activity,
            sku=r.action.sku,
            box=normalize_box(r.box, video.width, video.height),
        )
        for k, r in enumerate(rendered)
        if r.action is not None and r.box is not None
    )
    annotation = replace(annotate(world, config, boxes), box_fps=float(fps))
    frames = through_encoder([r.image for r in rendered], replace(video, fps=fps))
    pictures = np.stack([np.asarray(reference_image(item.style)) for item in catalog])
    return SampledStore(catalog, pictures, frames, fps, annotation)


def sampled_plan(seed: int, index: int, seconds: int, config: SynthConfig) -> VideoPlan:
    """The video of never-filmed store ``index`` of ``seed``: its own seed and length."""
    return VideoPlan(
        video_id=f"sampled-{store_id(index)}",
        split="train",
        seed=derive_seed(seed, "sampled", index),
        num_frames=seconds * config.video.fps,
        store=store_id(index),
    )


def through_encoder(images: list[np.ndarray], video: VideoConfig) -> np.ndarray:
    """``images`` as the generator's H.264 settings encode and decode them ``(N, H, W, 3)``."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "sampled.mp4"
        with VideoWriter(path, video) as writer:
            for image in images:
                writer.write(image)
        return np.stack(list(iter_video_frames(path, float(video.fps)))[: len(images)])
