"""Backbone tokens of object (catalog) images, remembered by content.

Every activity and time question carries its product's catalog image, and a store asks
thousands of questions about a few hundred products. The backbone is frozen, so an image's
tokens are the same every time: computing them once per image instead of once per batch
took a third of a training step, and a third of a batch of answers, on 2 CPU cores.

Each image goes through the backbone alone, so its tokens do not depend on which images
it was first asked with (answers stay batch-invariant). The cache forgets everything when
the backbone's weights or buffers change in place (``Tensor._version``, which every
in-place write such as ``load_state_dict`` or an optimizer step increments) or move.
Checking that walks the backbone's ~250 tensors (0.4 ms); a batch of answers asks for
images several times with weights that cannot change meanwhile, so it checks once for the
whole batch (``fixed_backbone``). Within that scope an image object's key is also computed
once (``key``): the worker passes one catalog array per product for all of its questions,
and a long window's question is keyed again for its timeline and its edges.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from model.queries import Image

#: Images kept: 2,048 x 16 x 576 float32 is 75 MB for ``tiny`` (300 MB for ``paper``).
DEFAULT_CAPACITY = 2048


class ObjectTokenCache:
    """LRU of ``capacity`` images' backbone tokens ``(S, C)``, keyed by content and shape."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._tokens: OrderedDict[bytes, Tensor] = OrderedDict()
        self._weights: tuple[object, ...] = ()
        self._fixed = 0  # depth of ``fixed_backbone`` scopes
        self._keys: dict[int, tuple[Image, bytes]] = {}  # id -> (image, key), in the scope
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._tokens)

    def tokens(
        self, backbone: nn.Module, images: Sequence[Image], encode: Callable[[Tensor], Tensor]
    ) -> list[Tensor]:
        """Tokens ``(S, C)`` of each image; ``encode`` maps one picture ``(H, W, 3)`` to
        them and runs only for images not seen since the backbone last changed."""
        if not self._fixed:
            self._check(backbone)
        out = []
        for image in images:
            key = self.key(image)
            found = self._tokens.get(key)
            if found is None:
                self.misses += 1
                found = encode(torch.as_tensor(image))
                self._tokens[key] = found
                if len(self._tokens) > self.capacity:
                    self._tokens.popitem(last=False)
            else:
                self.hits += 1
                self._tokens.move_to_end(key)
            out.append(found)
        return out

    @contextmanager
    def fixed_backbone(self, backbone: nn.Module) -> Iterator[None]:
        """Within: ``backbone``'s weights do not change (one batch of answers, no
        training step in between), so they are checked once, on entry."""
        self._check(backbone)
        self._fixed += 1
        try:
            yield
        finally:
            self._fixed -= 1
            if not self._fixed:
                self._keys.clear()

    def key(self, image: Image) -> bytes:
        """``image_key(image)``; within ``fixed_backbone``, computed once per image object.

        The scope is one batch of answers, whose images are the caller's and only read;
        the entry holds the image, so its ``id`` is not reused while the scope lasts.
        """
        if not self._fixed:
            return image_key(image)
        found = self._keys.get(id(image))
        if found is None or found[0] is not image:
            found = (image, image_key(image))
            self._keys[id(image)] = found
        return found[1]

    def _check(self, backbone: nn.Module) -> None:
        """Forget every image's tokens if the backbone changed since the last check."""
        weights = _weights_state(backbone)
        if weights != self._weights:
            self._tokens.clear()
            self._weights = weights


def image_key(image: Image) -> bytes:
    """An image's identity: its content's digest, its shape and its type.

    SHA-256, which this CPU runs in hardware (26 us a 128 x 128 image, against 52 for
    BLAKE2b with a copy of the bytes first): every question carries its product's image,
    so a batch of answers digests one per question.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    pixels = np.ascontiguousarray(image)  # no copy when it already is
    shape = repr((tuple(pixels.shape), pixels.dtype.str)).encode()
    return hashlib.sha256(pixels.data).digest() + shape


def _weights_state(backbone: nn.Module) -> tuple[object, ...]:
    """Changes whenever a weight or buffer is written in place, replaced or moved."""
    tensors = [*backbone.parameters(), *backbone.buffers()]
    return tuple((id(t), t._version, t.device) for t in tensors)
