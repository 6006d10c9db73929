"""Object-image tokens computed once per training run instead of once per step.

``LongVMNet.encode_object_images`` runs the backbone on every distinct image of a batch.
The backbone is frozen and a dataset has few catalog images, so in training that is the
same few results recomputed every step (on 2 CPU cores it was a third of a step). While
``cached_object_tokens(net)`` is active, the net remembers each image's tokens by content.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from model.network import LongVMNet
from model.queries import Image


@contextlib.contextmanager
def cached_object_tokens(net: LongVMNet) -> Iterator[None]:
    """Within the block, ``net.encode_object_images`` reuses tokens of images it has seen."""
    original = net.encode_object_images
    memo: dict[bytes, Tensor] = {}

    def encode(images: Sequence[Image]) -> Tensor:
        keys = [_key(image) for image in images]
        missing = {k: image for k, image in zip(keys, images, strict=True) if k not in memo}
        if missing:
            tokens = original(list(missing.values()))  # (N, S, C), one backbone pass each
            memo.update(zip(missing, tokens, strict=True))
        return torch.stack([memo[k] for k in keys])  # (N, S, C)

    net.encode_object_images = encode  # type: ignore[method-assign]  # this instance only, undone below
    try:
        yield
    finally:
        del net.encode_object_images  # back to the class's method


def _key(image: Image) -> bytes:
    picture = torch.as_tensor(image)
    content = picture.cpu().contiguous().numpy().tobytes()
    return hashlib.blake2b(content, digest_size=16).digest() + repr(tuple(picture.shape)).encode()
