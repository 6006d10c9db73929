"""Named, independent random streams derived from one seed.

Every random choice comes from a stream named after what it decides (the catalog, the
split, one video's script, one frame's noise), so changing how much one part draws never
shifts another part, and a frame can be re-rendered alone with the same noise.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(*parts: int | str) -> int:
    """A seed that depends on every part, stable across Python versions and runs.

    53 bits, so that it survives JSON readers that parse numbers as doubles.
    """
    text = "\x1f".join(str(part) for part in parts)
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 11


def rng_for(*parts: int | str) -> np.random.Generator:
    """A numpy generator for the stream named by ``parts``."""
    return np.random.default_rng(derive_seed(*parts))
