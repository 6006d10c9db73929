"""One embedding space for product tokens in video and catalog images (deviation).

A store changes its products every week, so the answer cannot rely on having seen a SKU
in training: it must *match* what a token shows against the query's catalog image. This
module embeds both sides with one linear map and compares them by cosine similarity:

- a backbone token ``(..., C)`` → unit vector ``(..., E)``;
- a catalog image's tokens ``(N, S, C)`` → their mean → unit vector ``(N, E)``.

Backbone pretraining (``model.train.pretrain_backbone``) trains it as a prototype
classifier over a store's catalog (any store's: the prototypes are the catalog images
themselves, not a table of known SKUs), and the answer path (``EncoderDecoder``) starts
from those weights and gives every memory token its similarity to the query's product.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ProductMatch(nn.Module):
    """Linear embedding ``C → E`` of tokens and catalog images, unit length."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Linear(channels, dim)

    def tokens(self, tokens: Tensor) -> Tensor:
        """Unit embeddings ``(..., E)`` of backbone tokens ``(..., C)``."""
        return F.normalize(self.embed(tokens.to(self.embed.weight.dtype)), dim=-1)

    def images(self, image_tokens: Tensor) -> Tensor:
        """Unit embeddings ``(N, E)`` of catalog images given as tokens ``(N, S, C)``: the
        image is one product, so its cells are pooled before the map."""
        return self.tokens(image_tokens.mean(dim=1))

    @staticmethod
    def similarity(tokens: Tensor, images: Tensor) -> Tensor:
        """Cosine similarity ``(N, m)`` of embedded tokens ``(N, m, E)`` to one embedded
        image per row ``(N, E)``."""
        return (tokens * images[:, None, :]).sum(dim=-1)
