"""Datasets for training and evaluation: cached backbone tokens, examples, batches.

``TokenCache`` runs the frozen backbone once per video and keeps its tokens on disk;
``load_split`` turns a split's query records into model queries and targets (seconds →
memory steps); ``epoch_batches`` forms batches in which no video appears twice.
"""

from model.data.batches import Step, epoch_batches, video_steps
from model.data.examples import Example, activity_index, make_example, step_boxes
from model.data.handled import box_cells, handled_map
from model.data.split import SplitData, load_catalog_images, load_split
from model.data.timeline import nearest_step, seconds_to_steps, steps_to_seconds
from model.data.token_cache import (
    TokenCache,
    backbone_identity,
    default_cache_dir,
    file_hash,
    weights_hash,
)

__all__ = [
    "Example",
    "SplitData",
    "Step",
    "TokenCache",
    "activity_index",
    "backbone_identity",
    "box_cells",
    "default_cache_dir",
    "epoch_batches",
    "file_hash",
    "handled_map",
    "load_catalog_images",
    "load_split",
    "make_example",
    "nearest_step",
    "seconds_to_steps",
    "step_boxes",
    "steps_to_seconds",
    "video_steps",
    "weights_hash",
]
