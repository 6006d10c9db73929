"""Training (paper Sec. 3): per-video memories carried through each epoch, a batch never
holding two items of one video, the online continual loss over the last p queries, an
annealed Gumbel temperature and separate learning rates for the sampler and the rest."""

from model.train.config import TrainConfig
from model.train.loop import TrainResult, train, train_step
from model.train.state import has_state, load_state, read_train_config, save_state

__all__ = [
    "TrainConfig",
    "TrainResult",
    "has_state",
    "load_state",
    "read_train_config",
    "save_state",
    "train",
    "train_step",
]
