"""`cartmem catalog`: the products the till can scan and the model can look for."""

from __future__ import annotations

from pathlib import Path

import click

from app import catalog as catalog_ops
from app.cli._output import emit, json_option, table

_COLUMNS = ("sku", "name", "price", "image")


def _row(p: catalog_ops.ProductInfo) -> tuple[str, str, str, str]:
    return (p.sku, p.name, p.price or "", f"{p.image_width}x{p.image_height}")


@click.group()
def catalog() -> None:
    """Manage the product catalog."""


@catalog.command()
@click.argument("sku")
@click.option("--name", required=True, help="Product name shown to staff.")
@click.option(
    "--image",
    "image_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Reference image of the product (PNG or JPEG).",
)
@click.option("--price", default=None, help="Unit price, e.g. 2.49.")
@click.option("--replace", is_flag=True, help="Overwrite the product if the SKU exists.")
@json_option
@click.pass_obj
def add(
    app, sku: str, name: str, image_path: Path, price: str | None, replace: bool, as_json: bool
) -> None:
    """Add product SKU with its reference image."""
    product = catalog_ops.add_product(
        app.database, sku, name=name, image_path=image_path, price=price, replace=replace
    )
    emit(product, as_json, lambda out: out.print(f"added {product.sku} ({product.name})"))


@catalog.command(name="list")
@json_option
@click.pass_obj
def list_(app, as_json: bool) -> None:
    """List the catalog."""
    products = catalog_ops.list_products(app.database)
    emit(
        products,
        as_json,
        lambda out: out.print(
            table(f"catalog ({len(products)} products)", _COLUMNS, map(_row, products))
        ),
    )
