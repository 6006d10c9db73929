"""Draws any frame of a video from its store, script and distractors.

A frame is a pure function of its index (noise included, seeded per frame), so a test can
re-render one frame with and without the handled product and check the annotated box
against the pixels that changed. The box of the handled product is measured from the
sprite actually pasted, not predicted from the pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from model.synth.distractors import Distractors, apply_occluders, draw_crossings
from model.synth.hand import HandLook, draw_hand
from model.synth.motion import Action, Pose, hand_point, product_pose
from model.synth.products import ProductStyle
from model.synth.scene import Store, sprite
from model.synth.script import VideoScript
from model.synth.seeding import rng_for

PixelBox = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end exclusive


@dataclass(frozen=True)
class RenderedFrame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    action: Action | None  # the activity in progress, if any
    box: PixelBox | None  # where the handled product's pixels are (None: not drawn)


class Renderer:
    """Renders frames of one video; holds the per-video caches (cart contents)."""

    def __init__(
        self, store: Store, script: VideoScript, distractors: Distractors, hand: HandLook, seed: int
    ) -> None:
        self.store, self.script, self.distractors, self.hand = store, script, distractors, hand
        self.seed = seed
        self._cart_cache: dict[tuple[int, ...], Image.Image] = {}

    def render(self, frame: int, *, draw_handled: bool = True) -> RenderedFrame:
        """Frame ``frame``; ``draw_handled=False`` leaves out only the handled product."""
        store = self.store
        image = Image.new("RGB", (store.width, store.height))
        image.paste(self._shelves(frame), (0, 0))
        image.paste(self._cart(frame), (0, store.shelf_height))

        action = self.script.action_at(frame)
        box = None
        hand_at = None
        if action is not None:
            style = store.styles[action.sku]
            pose = product_pose(action, frame)
            if draw_handled:
                box = paste_product(image, style, pose)
            hand_at = hand_point(action, frame, style.aspect, store.rest)
        else:
            reach = self.script.reach_at(frame)
            if reach is not None:
                p = (frame - reach.start) / (reach.end - reach.start)
                q = 1.0 - abs(2.0 * p - 1.0)  # out and back
                rx, ry = store.rest
                hand_at = (rx + (reach.target[0] - rx) * q, ry + (reach.target[1] - ry) * q)
        if hand_at is not None:
            draw_hand(ImageDraw.Draw(image), self.hand, hand_at, (store.width, store.height))
        return RenderedFrame(self._expose(image, frame), action, box)

    # ------------------------------------------------------------------ layers
    def _shelves(self, frame: int) -> Image.Image:
        """The shelf crop under the camera, emptied where items were taken, plus passers-by."""
        store = self.store
        x = self.script.camera.x_at(frame)
        crop = store.world_full[:, x : x + store.width].copy()
        for absence in self.script.absences:
            if absence.start <= frame and (absence.end is None or frame < absence.end):
                f = store.facings[absence.facing]
                a, b = max(f.x0, x), min(f.x0 + f.width, x + store.width)
                if a < b:
                    rows = slice(f.y0, f.y0 + f.height)
                    crop[rows, a - x : b - x] = store.world_empty[rows, a:b]
        image = Image.fromarray(crop)
        draw_crossings(image, self.distractors, frame, store.styles)
        return image

    def _cart(self, frame: int) -> Image.Image:
        """The cart band with the items lying in it at ``frame`` (cached per set of items)."""
        visible = tuple(
            i
            for i, stay in enumerate(self.script.cart_stays)
            if stay.start <= frame and (stay.end is None or frame < stay.end)
        )
        cached = self._cart_cache.get(visible)
        if cached is None:
            store = self.store
            band = Image.new("RGB", (store.width, store.height))
            band.paste(Image.fromarray(store.cart_background), (0, store.shelf_height))
            for i in visible:
                stay = self.script.cart_stays[i]
                paste_product(band, store.styles[stay.sku], store.cart_slots[stay.slot])
            cached = band.crop((0, store.shelf_height, store.width, store.height))
            self._cart_cache[visible] = cached
        return cached

    def _expose(self, image: Image.Image, frame: int) -> np.ndarray:
        """Occluders, light and sensor noise; the result is what the camera records."""
        pixels = np.asarray(image, dtype=np.float32).copy()
        apply_occluders(pixels, self.distractors, frame)
        pixels *= self.distractors.gain(frame)
        noise = rng_for(self.seed, "noise", frame).standard_normal(pixels.shape, dtype=np.float32)
        pixels += noise * np.float32(self.distractors.noise_sigma)
        return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def paste_product(image: Image.Image, style: ProductStyle, pose: Pose) -> PixelBox | None:
    """Paste the product at ``pose`` and return the box of its pixels, clipped to the image."""
    width = max(2, round(pose.height * style.aspect * max(abs(pose.turn), 0.08)))
    height = max(2, round(pose.height))
    product = sprite(style, width, height, back=pose.turn < 0)
    if abs(pose.angle) >= 0.5:
        product = product.rotate(pose.angle, resample=Image.Resampling.BILINEAR, expand=True)
    x0, y0 = round(pose.cx - product.width / 2), round(pose.cy - product.height / 2)
    image.paste(product, (x0, y0), product)
    drawn = product.getchannel("A").getbbox()
    if drawn is None:
        return None
    box = (
        max(0, x0 + drawn[0]),
        max(0, y0 + drawn[1]),
        min(image.width, x0 + drawn[2]),
        min(image.height, y0 + drawn[3]),
    )
    return box if box[0] < box[2] and box[1] < box[3] else None
