"""The trained checkpoints that ship inside the package (``model/checkpoints/``).

``tiny`` (attention mixer) is the default model of every command that needs one;
``tiny-mamba`` is the same recipe with the Mamba mixer (issue 14) and ``tiny-fast`` the
recipe with questions fused in the decoder (issue 15: the memory encoded once, answers
~4x faster), both for ``CARTMEM_CHECKPOINT_PATH``. How each was trained (commands, seed,
time, machine) is in ``docs/RESULTS.md``.
"""

from __future__ import annotations

from pathlib import Path

from model.errors import CheckpointError

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


def default_checkpoint(preset: str = "tiny") -> Path:
    """Directory of the shipped checkpoint named ``preset``: ``tiny``, ``tiny-mamba`` or
    ``tiny-fast``."""
    path = CHECKPOINTS / preset
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise CheckpointError(
            f"No shipped {preset!r} checkpoint in {CHECKPOINTS}; pass a checkpoint directory."
        )
    return path
