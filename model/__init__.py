"""Long-VMNet: a fixed-size video memory per session and query answering from it alone.

Typical use::

    net = LongVMNet(ModelConfig.preset("tiny"))
    memory = net.write(None, frames)           # frames: (B, T, H, W, 3) uint8, one clip each
    memory = net.write(memory, next_frames)    # the memory never grows: m tokens per session
    answers = net.answer(memory, [ActivityQuery(0, product_image, start=0, end=30)])
"""

from model.candidates import ClipTokens
from model.config import DEFAULT_ACTIVITY_LABELS, WRITER_NAMES, ModelConfig
from model.errors import CheckpointError, ConfigError, ModelError
from model.losses import loss_weights, query_losses, weighted_sum
from model.memory import Memory
from model.network import LongVMNet
from model.outputs import QueryOutputs
from model.prepared import PreparedMemory
from model.queries import (
    ActivityPrediction,
    ActivityQuery,
    ActivityTarget,
    ObjectPrediction,
    ObjectQuery,
    ObjectTarget,
    Prediction,
    Query,
    Target,
    TimePrediction,
    TimeQuery,
    TimeTarget,
)
from model.writers import MemoryWriter, make_writer

__all__ = [
    "DEFAULT_ACTIVITY_LABELS",
    "WRITER_NAMES",
    "ActivityPrediction",
    "ActivityQuery",
    "ActivityTarget",
    "CheckpointError",
    "ClipTokens",
    "ConfigError",
    "LongVMNet",
    "Memory",
    "MemoryWriter",
    "ModelConfig",
    "ModelError",
    "ObjectPrediction",
    "ObjectQuery",
    "ObjectTarget",
    "Prediction",
    "PreparedMemory",
    "Query",
    "QueryOutputs",
    "Target",
    "TimePrediction",
    "TimeQuery",
    "TimeTarget",
    "loss_weights",
    "make_writer",
    "query_losses",
    "weighted_sum",
]
