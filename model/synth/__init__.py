"""Synthetic store dataset: generator, on-disk format and reader.

``generate_dataset`` writes a dataset (H.264 videos, catalog, annotations, ReST-style
queries); ``read_dataset`` and ``decode_video`` are what training reads it with. The format
is described in ``docs/DATASET.md``; real annotations converted into it load the same way.
"""

from model.synth.config import (
    ACTIVITIES,
    BUCKETS,
    FORMAT_VERSION,
    GENERATOR_VERSION,
    QUERY_KINDS,
    DistractorConfig,
    QueryConfig,
    ScriptConfig,
    SynthConfig,
    VideoConfig,
)
from model.synth.errors import DatasetError, OutputExistsError, SynthConfigError, SynthError
from model.synth.generate import SPLITS, DatasetSummary, generate_dataset
from model.synth.queries import make_queries
from model.synth.reader import Dataset, read_dataset
from model.synth.records import (
    ActivityQueryRecord,
    BoxRecord,
    CatalogEntry,
    Event,
    ObjectQueryRecord,
    QueryRecord,
    Span,
    StoreRecord,
    TimeQueryRecord,
    VideoAnnotation,
    query_from_json,
    query_to_json,
)
from model.synth.video_io import decode_video, iter_video_frames

__all__ = [
    "ACTIVITIES",
    "BUCKETS",
    "FORMAT_VERSION",
    "GENERATOR_VERSION",
    "QUERY_KINDS",
    "SPLITS",
    "ActivityQueryRecord",
    "BoxRecord",
    "CatalogEntry",
    "Dataset",
    "DatasetError",
    "DatasetSummary",
    "DistractorConfig",
    "Event",
    "ObjectQueryRecord",
    "OutputExistsError",
    "QueryConfig",
    "QueryRecord",
    "ScriptConfig",
    "Span",
    "StoreRecord",
    "SynthConfig",
    "SynthConfigError",
    "SynthError",
    "TimeQueryRecord",
    "VideoAnnotation",
    "VideoConfig",
    "decode_video",
    "generate_dataset",
    "iter_video_frames",
    "make_queries",
    "query_from_json",
    "query_to_json",
    "read_dataset",
]
