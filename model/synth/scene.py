"""The store one video is shot in: a shelf wall the camera pans along, and the cart below.

The frame is split in two: the upper part shows the shelves (a crop of a wide "world"
image that moves with the camera), the bottom band shows the cart the camera is mounted
on, which never moves in the frame. Putting a product into the cart therefore always
moves it down into that band, and returning it moves it up to its shelf slot.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from model.synth.catalog import CatalogItem
from model.synth.config import SynthConfig
from model.synth.motion import Pose, smoothstep
from model.synth.products import BASE_HEIGHT, ProductStyle, draw_product, hsv_colour

SHELF_ROWS = 3
SHELF_SHARE = 0.72  # the shelves fill this share of the frame height, the cart the rest
CART_SLOTS_PER_ROW = 6


@dataclass(frozen=True)
class Facing:
    """One physical item standing on the shelf, in world pixels."""

    index: int
    sku: str
    x0: int
    y0: int
    width: int
    height: int

    def pose(self, camera_x: int) -> Pose:
        """Its pose in the frame when the camera's left edge is at ``camera_x``."""
        return Pose(
            cx=self.x0 + self.width / 2 - camera_x, cy=self.y0 + self.height / 2, height=self.height
        )


def sprite(style: ProductStyle, width: int, height: int, back: bool = False) -> Image.Image:
    """The product's RGBA sprite at an exact size: the one resize every drawing goes through."""
    return draw_product(style, BASE_HEIGHT, back).resize((width, height), Image.Resampling.BILINEAR)


class CameraPath:
    """The camera's left edge in world pixels over time: holds and eased pans between them."""

    def __init__(self, start_x: int) -> None:
        self._frames: list[int] = [0]
        self._xs: list[int] = [start_x]

    def pan(self, start: int, end: int, to_x: int) -> None:
        """Stay still until ``start``, then move to ``to_x``, arriving at ``end``."""
        if start < self._frames[-1] or end <= start:
            raise ValueError("camera pans must follow each other in time")
        self._frames += [start, end]
        self._xs += [self._xs[-1], to_x]

    @property
    def last_x(self) -> int:
        return self._xs[-1]

    def x_at(self, frame: int) -> int:
        i = bisect.bisect_right(self._frames, frame) - 1
        if i + 1 >= len(self._frames) or self._xs[i] == self._xs[i + 1]:
            return self._xs[i]
        q = smoothstep((frame - self._frames[i]) / (self._frames[i + 1] - self._frames[i]))
        return round(self._xs[i] + (self._xs[i + 1] - self._xs[i]) * q)


class Store:
    """Shelf layout, the pre-drawn shelf wall (with and without products), and the cart."""

    def __init__(
        self, rng: np.random.Generator, catalog: tuple[CatalogItem, ...], config: SynthConfig
    ):
        self.width, self.height = config.video.width, config.video.height
        self.shelf_height = round(self.height * SHELF_SHARE)
        self.styles = {item.sku: item.style for item in catalog}
        self.facings = self._lay_out(rng, catalog, config.script.facings_per_sku)
        self.world_width = max(
            max(f.x0 + f.width for f in self.facings) + self.width // 3, self.width + 2
        )
        self.world_empty = self._draw_wall(rng)
        world = Image.fromarray(self.world_empty)
        for facing in self.facings:
            image = sprite(self.styles[facing.sku], facing.width, facing.height)
            world.paste(image, (facing.x0, facing.y0), image)
        self.world_full = np.asarray(world).copy()
        self.cart_slots = self._cart_slots(rng)
        self.cart_background = self._draw_cart(rng)
        self.rest = (self.width * 1.12, self.height * 1.15)  # the hand, out of view

    @property
    def max_camera_x(self) -> int:
        return self.world_width - self.width

    def camera_x_showing(self, facing: Facing, at: float) -> int:
        """Camera position that puts ``facing``'s centre at ``at`` (share of frame width)."""
        x = round(facing.x0 + facing.width / 2 - at * self.width)
        return int(min(max(x, 0), self.max_camera_x))

    # ------------------------------------------------------------------ construction
    def _lay_out(
        self, rng: np.random.Generator, catalog: tuple[CatalogItem, ...], facings_per_sku: int
    ) -> tuple[Facing, ...]:
        """Blocks of identical facings, shuffled per video so position says nothing about SKU."""
        row_height = self.shelf_height / SHELF_ROWS
        product_height = round(row_height * 0.72)
        plank = self._plank_thickness()
        margin = self.width // 3
        row_ends = [margin] * SHELF_ROWS
        facings: list[Facing] = []
        for k in rng.permutation(len(catalog)):
            item = catalog[int(k)]
            width = max(2, round(product_height * item.style.aspect))
            row = int(np.argmin(row_ends))
            y0 = round((row + 1) * row_height) - plank - product_height
            for _ in range(facings_per_sku):
                facings.append(
                    Facing(len(facings), item.sku, row_ends[row], y0, width, product_height)
                )
                row_ends[row] += width + 2
            row_ends[row] += 8
        return tuple(facings)

    def _plank_thickness(self) -> int:
        return max(3, self.height // 36)

    def _draw_wall(self, rng: np.random.Generator) -> np.ndarray:
        """The empty shelf wall: back panel, planks and price tags, as (shelf_h, world_w, 3)."""
        hue = float(rng.random())
        top = np.array(hsv_colour(hue, 0.15, 0.85), np.float32)
        bottom = np.array(hsv_colour(hue, 0.2, 0.6), np.float32)
        ramp = np.linspace(0.0, 1.0, self.shelf_height, dtype=np.float32)[:, None, None]
        wall = top * (1 - ramp) + bottom * ramp
        wall = np.broadcast_to(wall, (self.shelf_height, self.world_width, 3)).copy()
        wall[:, ::24] *= 0.93  # panel seams give the pan something to track
        image = Image.fromarray(wall.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        plank_colour = hsv_colour(float(rng.random()), 0.35, 0.45)
        plank = self._plank_thickness()
        row_height = self.shelf_height / SHELF_ROWS
        for row in range(SHELF_ROWS):
            y1 = round((row + 1) * row_height) - 1
            draw.rectangle((0, y1 - plank + 1, self.world_width, y1), fill=plank_colour)
            draw.line((0, y1 - plank + 1, self.world_width, y1 - plank + 1), fill=(220, 220, 210))
        for facing in self.facings:
            if facing.index > 0 and self.facings[facing.index - 1].sku == facing.sku:
                continue  # one price tag per block of identical facings
            y = facing.y0 + facing.height + 1
            draw.rectangle((facing.x0, y, facing.x0 + 7, y + plank - 2), fill=(250, 250, 245))
        return np.asarray(image).copy()

    def _cart_slots(self, rng: np.random.Generator) -> tuple[Pose, ...]:
        """Where items lie in the cart: two staggered rows across the bottom band."""
        band = self.height - self.shelf_height
        slots = []
        for row, (depth, offset) in enumerate(((0.42, 0.0), (0.8, 0.5))):
            spacing = 0.72 * self.width / (CART_SLOTS_PER_ROW - 1)
            for k in range(CART_SLOTS_PER_ROW):
                cx = 0.14 * self.width + (k + offset * (row % 2)) * spacing
                slots.append(
                    Pose(
                        cx=min(cx, 0.9 * self.width),
                        cy=self.shelf_height + depth * band,
                        height=0.75 * band,
                        angle=float(rng.uniform(-25, 25)),
                    )
                )
        return tuple(slots)

    def _draw_cart(self, rng: np.random.Generator) -> np.ndarray:
        """The empty cart band: wire floor, side rails and the handle bar, as (band, W, 3)."""
        band = self.height - self.shelf_height
        base = hsv_colour(float(rng.random()), 0.15, 0.35)
        image = Image.new("RGB", (self.width, band), base)
        draw = ImageDraw.Draw(image)
        wire = (170, 172, 178)
        for x in range(-band, self.width + band, 9):
            draw.line((x, 0, x + band, band), fill=wire)
            draw.line((x + band, 0, x, band), fill=wire)
        draw.line((0, band, self.width // 6, 0), fill=(120, 120, 125), width=3)
        draw.line((self.width, band, self.width * 5 // 6, 0), fill=(120, 120, 125), width=3)
        handle = hsv_colour(float(rng.random()), 0.7, 0.6)
        draw.rectangle((0, 0, self.width, max(3, band // 9)), fill=handle)
        return np.asarray(image).copy()
