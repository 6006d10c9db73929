"""Backbone tokens of object (catalog) images, remembered by content.

Every activity and time question carries its product's catalog image, and a store asks
thousands of questions about a few hundred products. The backbone is frozen, so an image's
tokens are the same every time: computing them once per image instead of once per batch
took a third of a training step, and a third of a batch of answers, on 2 CPU cores.

Each image goes through the backbone alone, so its tokens do not depend on which images
it was first asked with (answers stay batch-invariant). The cache forgets everything when
the backbone's weights or buffers change, are replaced or move (``model.weight_versions``).
Finding those ~250 tensors walks the backbone's modules (0.5 ms): the walk is kept until
some module anywhere registers a parameter, buffer or submodule, and a check reads their
versions. A batch of answers asks for images several times with weights that cannot change
meanwhile, so it checks once for the whole batch (``fixed_backbone``). Within that scope an
image object's key is also computed once (``key``): the worker passes one catalog array per
product for all of its questions, and a long window's question is keyed again for its
timeline and its edges. What the answer makes of an image's tokens (projected, pooled:
``derived``) is kept beside them as well, while the weights that made it stay the same.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from model import weight_versions
from model.queries import Image

T = TypeVar("T")

#: Images kept: 2,048 x 16 x 576 float32 is 75 MB for ``tiny`` (300 MB for ``paper``).
DEFAULT_CAPACITY = 2048


class ObjectTokenCache:
    """LRU of ``capacity`` images' backbone tokens ``(S, C)``, keyed by content and shape."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._tokens: OrderedDict[bytes, Tensor] = OrderedDict()
        self._weights: tuple[object, ...] = ()
        # the backbone's tensors, the module they were found in and the registrations then
        self._walked: tuple[list[Tensor], nn.Module, int] | None = None
        self._fixed = 0  # depth of ``fixed_backbone`` scopes
        self._keys: dict[int, tuple[Image, bytes]] = {}  # id -> (image, key), in the scope
        # key -> (the tokens it was made from, weakly: an entry does not keep tokens the
        # cache has dropped; what ``derived`` made of them), and the state of the weights
        # it read
        self._derived: OrderedDict[bytes, tuple[weakref.ref[Tensor], Any]] = OrderedDict()
        self._derived_weights: tuple[object, ...] = ()
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

    def derived(
        self,
        backbone: nn.Module,
        images: Sequence[Image],
        encode: Callable[[Tensor], Tensor],
        derive: Callable[[Tensor], T],
        weights: Sequence[Tensor],
    ) -> list[T]:
        """``derive`` of each image's tokens (``tokens``), made once per image while the
        tokens and ``weights`` (what ``derive`` reads) stay the same: the answer's own
        map of an image's tokens is the same for every question about its product."""
        state = weight_versions.state(weights)
        if state != self._derived_weights:
            self._derived.clear()
            self._derived_weights = state
        out: list[T] = []
        for image, tokens in zip(images, self.tokens(backbone, images, encode), strict=True):
            key = self.key(image)
            found = self._derived.get(key)
            if found is None or found[0]() is not tokens:  # new, or its tokens made again
                found = (weakref.ref(tokens), derive(tokens))
                self._derived[key] = found
                if len(self._derived) > self.capacity:
                    self._derived.popitem(last=False)
            else:
                self._derived.move_to_end(key)
            out.append(found[1])  # what ``derive`` gave for this image
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
        weights = weight_versions.state(self._tensors(backbone))
        if weights != self._weights:
            self._tokens.clear()
            self._weights = weights

    def _tensors(self, backbone: nn.Module) -> list[Tensor]:
        """``backbone``'s parameters and buffers, walked again only when a module has
        registered one (or a submodule) since the last walk: replacing a weight does."""
        walked = self._walked
        if (
            walked is None
            or walked[1] is not backbone
            or walked[2] != weight_versions.registrations()
        ):
            tensors = [*backbone.parameters(), *backbone.buffers()]
            walked = self._walked = (tensors, backbone, weight_versions.registrations())
        return walked[0]


def image_key(image: Image) -> bytes:
    """An image's identity: its content's digest, its shape and its type.

    SHA-256, which this CPU runs in hardware (26 us a 128 x 128 image, against 52 for
    BLAKE2b with a copy of the bytes first): every question carries its product's image,
    and a batch of answers digests each image object once (``ObjectTokenCache.key``).
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    pixels = np.ascontiguousarray(image)  # no copy when it already is
    shape = repr((tuple(pixels.shape), pixels.dtype.str)).encode()
    return hashlib.sha256(pixels.data).digest() + shape
