"""Catalog operations for staff: add a product with its reference image, list the catalog."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from PIL import Image, UnidentifiedImageError

import storage
from app.db import Database
from app.errors import InvalidInputError

SKU_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_SIDE = 4096


@dataclass(frozen=True)
class ProductInfo:
    sku: str
    name: str
    price: str | None
    image_width: int
    image_height: int
    image_sha256: str

    @classmethod
    def of(cls, product: storage.Product) -> ProductInfo:
        return cls(
            sku=product.sku,
            name=product.name,
            price=None if product.price is None else str(product.price),
            image_width=product.image_width,
            image_height=product.image_height,
            image_sha256=product.image_sha256,
        )


def add_product(
    database: Database,
    sku: str,
    *,
    name: str,
    image_path: Path,
    price: str | None = None,
    replace: bool = False,
) -> ProductInfo:
    """Validate and store one product; the image is kept as PNG whatever format it came in."""
    if not SKU_PATTERN.fullmatch(sku):
        raise InvalidInputError(
            f"SKU {sku!r} is not valid: use 1-64 letters, digits, '.', '_', ':' or '-'."
        )
    if not name.strip():
        raise InvalidInputError("a product needs a non-empty --name.")
    png, size = _read_image(image_path)
    with database.session() as db:
        try:
            product = storage.add_product(
                db,
                sku=sku,
                name=name.strip(),
                image_png=png,
                image_size=size,
                price=_parse_price(price),
                replace=replace,
            )
        except storage.AlreadyExistsError:
            raise InvalidInputError(
                f"SKU {sku!r} is already in the catalog; pass --replace to overwrite it."
            ) from None
        return ProductInfo.of(product)


def list_products(database: Database) -> list[ProductInfo]:
    with database.session() as db:
        return [ProductInfo.of(p) for p in storage.list_products(db)]


def _parse_price(price: str | None) -> Decimal | None:
    if price is None:
        return None
    try:
        value = Decimal(price)
    except InvalidOperation:
        raise InvalidInputError(f"price {price!r} is not a number.") from None
    if not value.is_finite() or value < 0:
        raise InvalidInputError(f"price {price!r} must be zero or more.")
    return value.quantize(Decimal("0.01"))


def _read_image(path: Path) -> tuple[bytes, tuple[int, int]]:
    """The image re-encoded as RGB PNG, and its (width, height)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read image {path}: {exc.strerror}.") from None
    if len(raw) > MAX_IMAGE_BYTES:
        raise InvalidInputError(f"image {path} is larger than {MAX_IMAGE_BYTES // 2**20} MiB.")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidInputError(f"{path} is not a readable image (PNG or JPEG expected).") from None
    if max(rgb.size) > MAX_IMAGE_SIDE:
        raise InvalidInputError(f"image {path} is larger than {MAX_IMAGE_SIDE} pixels on a side.")
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return out.getvalue(), rgb.size
