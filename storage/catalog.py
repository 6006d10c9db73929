"""Catalog queries: the products checkout can scan and the model can look for."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.errors import AlreadyExistsError, RowNotFoundError
from storage.models import Product


def add_product(
    db: Session,
    *,
    sku: str,
    name: str,
    image_png: bytes,
    image_size: tuple[int, int],
    price: Decimal | None = None,
    replace: bool = False,
) -> Product:
    """Store a product; an existing SKU is an error unless ``replace`` is set."""
    existing = db.get(Product, sku)
    if existing is not None and not replace:
        raise AlreadyExistsError(f"product {sku!r} is already in the catalog")
    product = existing or Product(sku=sku)
    product.name = name
    product.price = price
    product.image_png = image_png
    product.image_sha256 = hashlib.sha256(image_png).hexdigest()
    product.image_width, product.image_height = image_size
    db.add(product)
    db.flush()
    return product


def list_products(db: Session) -> Sequence[Product]:
    return db.scalars(sa.select(Product).order_by(Product.sku)).all()


def get_product(db: Session, sku: str) -> Product:
    product = db.get(Product, sku)
    if product is None:
        raise RowNotFoundError(f"no product with SKU {sku!r}")
    return product
