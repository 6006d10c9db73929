"""The trained checkpoints that ship inside the package (``model/checkpoints/``).

``tiny`` is the default model of every command that needs one: questions fused in the
decoder (the memory encoded once), attention kept near in time, trained with each video at
a random point of an hour-long timeline, and read with m = 4,096 tokens a session, its
sampler attending in blocks of 64 candidates. ``tiny-early`` is the paper's early fusion
(every question re-encodes the memory; the default until session 14) and ``tiny-mamba``
``tiny``'s recipe with the Mamba mixer (issue 14; m = 4,096, its scans read every
candidate), both for ``CARTMEM_CHECKPOINT_PATH``. ``tiny-b160`` is ``tiny``'s recipe on a
backbone pretrained on 160 stores. The service runs ``tiny-pair`` (``SERVED``): ``tiny``,
``tiny-early`` and ``tiny-b160`` together, each keeping a memory of the session, the last
two helping to name the moved products. How each was trained (commands, seed, time,
machine) is in ``docs/RESULTS.md``.
"""

from __future__ import annotations

from pathlib import Path

from model.errors import CheckpointError

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


#: what the service runs unless ``CARTMEM_CHECKPOINT_PATH`` says otherwise: the model pair
#: of ``tiny`` (which finds the moves and answers every question) and its partners
#: ``tiny-early`` and ``tiny-b160`` (which help name the moved products; ``model.pair``)
SERVED = "tiny-pair"


def default_checkpoint(preset: str = "tiny") -> Path:
    """Directory of the shipped checkpoint named ``preset``: ``tiny``, ``tiny-early``,
    ``tiny-mamba``, ``tiny-b160``, or the model pair ``tiny-pair`` (``SERVED``)."""
    from model.pair_config import is_pair_checkpoint

    path = CHECKPOINTS / preset
    weights = is_pair_checkpoint(path) or (path / "model.safetensors").is_file()
    if not (path / "config.json").is_file() or not weights:
        raise CheckpointError(
            f"No shipped {preset!r} checkpoint in {CHECKPOINTS}; pass a checkpoint directory."
        )
    return path
