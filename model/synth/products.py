"""Procedural product drawings: silhouette, body colour, pattern and a brand label.

One ``ProductStyle`` per SKU decides the look; ``draw_product`` turns it into an RGBA
sprite. The catalog's reference image and every appearance in the videos (on the shelf,
in the hand, in the cart) come from the same sprite, so a model that matches the reference
image against video tokens is matching the same drawing, only scaled, turned and lit.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: Silhouettes and their width / height ratio.
SHAPES: dict[str, float] = {
    "box": 0.74,
    "cereal": 0.6,
    "can": 0.56,
    "bottle": 0.4,
    "jar": 0.84,
    "bag": 0.78,
    "carton": 0.5,
    "pouch": 0.66,
}
PATTERNS: tuple[str, ...] = ("solid", "hstripes", "vstripes", "dots", "checker", "diagonal")
#: What store catalogs draw from: more patterns, so thousands of products are not copies.
STORE_PATTERNS: tuple[str, ...] = (*PATTERNS, "grid", "waves", "halves", "band")
LABELS: tuple[str, ...] = ("band", "oval", "badge")

#: Height in pixels of the cached sprites everything else is scaled from.
BASE_HEIGHT = 128
_SUPERSAMPLE = 2  # draw at twice the size and downsample, for smooth edges

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ProductStyle:
    """Everything that makes one SKU look like itself."""

    shape: str
    body: RGB
    accent: RGB  # pattern, cap and lid colour
    label_bg: RGB
    label_fg: RGB
    pattern: str
    label: str  # label kind, one of LABELS
    brand: str  # short text printed on the label
    barcode: int  # seeds the bars on the back side
    # Store catalogs vary these per product; the defaults draw the single-store catalog.
    aspect_scale: float = 1.0  # the silhouette's width / height, relative to its shape's
    pattern_scale: float = 1.0  # stripe period, dot and checker cell size, relative
    label_shift: float = 0.0  # the label moves down by this share of the height

    @property
    def aspect(self) -> float:
        """Width / height of the silhouette."""
        return SHAPES[self.shape] * self.aspect_scale


def hsv_colour(hue: float, saturation: float, value: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (round(r * 255), round(g * 255), round(b * 255))


@functools.lru_cache(maxsize=512)
def draw_product(style: ProductStyle, height: int = BASE_HEIGHT, back: bool = False) -> Image.Image:
    """The product as an RGBA sprite ``height`` pixels tall (alpha 0 outside the silhouette).

    ``back=True`` draws the back side (same silhouette and colour, barcode and fine print
    instead of the label) which the hand shows while inspecting.
    """
    width = max(2, round(height * style.aspect))
    big_w, big_h = width * _SUPERSAMPLE, height * _SUPERSAMPLE
    silhouette, label_box, cap = _silhouette(style.shape, big_w, big_h)
    if style.label_shift:
        dy = round(big_h * style.label_shift)
        label_box = (label_box[0], label_box[1] + dy, label_box[2], label_box[3] + dy)

    body = Image.new("RGB", (big_w, big_h), _darker(style.body, 0.8) if back else style.body)
    if back:
        _draw_back(body, label_box, style)
    else:
        pattern = _pattern_mask(style.pattern, big_w, big_h, style.barcode, style.pattern_scale)
        body.paste(style.accent, (0, 0), pattern)
        _draw_label(body, label_box, style)
    if cap is not None:
        body.paste(style.accent, (0, 0), cap)
    _outline(body, silhouette)

    sprite = body.convert("RGBA")
    sprite.putalpha(silhouette)
    return sprite.resize((width, height), Image.Resampling.LANCZOS)


def reference_image(style: ProductStyle, size: int = 128) -> Image.Image:
    """The product's front alone on a plain light background: the catalog's image of a SKU."""
    canvas = Image.new("RGB", (size, size), (236, 236, 232))
    height = round(size * 0.86)
    if height * style.aspect > size * 0.86:
        height = round(size * 0.86 / style.aspect)
    sprite = draw_product(style, height)
    canvas.paste(sprite, ((size - sprite.width) // 2, (size - sprite.height) // 2), sprite)
    return canvas


# ---------------------------------------------------------------------- drawing helpers
def _silhouette(
    shape: str, w: int, h: int
) -> tuple[Image.Image, tuple[int, int, int, int], Image.Image | None]:
    """Silhouette mask, the rectangle the label goes in, and an optional cap/lid mask."""
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    cap: Image.Image | None = None
    label = (round(w * 0.1), round(h * 0.38), round(w * 0.9), round(h * 0.66))
    if shape in ("box", "cereal"):
        draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=max(2, w // 18), fill=255)
        if shape == "cereal":
            label = (round(w * 0.08), round(h * 0.18), round(w * 0.92), round(h * 0.46))
    elif shape == "can":
        e = round(h * 0.07)
        draw.rectangle((0, e, w - 1, h - 1 - e), fill=255)
        draw.ellipse((0, 0, w - 1, 2 * e), fill=255)
        draw.ellipse((0, h - 1 - 2 * e, w - 1, h - 1), fill=255)
    elif shape == "bottle":
        neck_w, neck_h, shoulder = round(w * 0.42), round(h * 0.16), round(h * 0.3)
        x0 = (w - neck_w) // 2
        draw.rectangle((x0, 0, x0 + neck_w, neck_h), fill=255)
        draw.polygon([(x0, neck_h), (x0 + neck_w, neck_h), (w - 1, shoulder), (0, shoulder)], 255)
        draw.rounded_rectangle((0, shoulder, w - 1, h - 1), radius=w // 6, fill=255)
        cap = Image.new("L", (w, h), 0)
        ImageDraw.Draw(cap).rectangle((x0, 0, x0 + neck_w, round(h * 0.07)), fill=255)
        label = (0, round(h * 0.45), w, round(h * 0.75))
    elif shape == "jar":
        lid = round(h * 0.16)
        draw.rounded_rectangle((round(w * 0.06), 0, round(w * 0.94), lid + 4), radius=4, fill=255)
        draw.rounded_rectangle((0, lid, w - 1, h - 1), radius=w // 5, fill=255)
        cap = Image.new("L", (w, h), 0)
        ImageDraw.Draw(cap).rectangle((round(w * 0.06), 0, round(w * 0.94), lid), fill=255)
    elif shape == "bag":
        teeth = 7
        top = [
            (round(i * (w - 1) / (2 * teeth)), round(h * (0.0 if i % 2 else 0.05)))
            for i in range(2 * teeth + 1)
        ]
        draw.polygon([*top, (round(w * 0.96), h - 1), (round(w * 0.04), h - 1)], fill=255)
    elif shape == "carton":
        gable = round(h * 0.22)
        draw.rectangle((0, gable, w - 1, h - 1), fill=255)
        draw.polygon([(0, gable), (w // 2, round(h * 0.05)), (w - 1, gable)], fill=255)
        draw.rectangle((round(w * 0.35), 0, round(w * 0.65), round(h * 0.07)), fill=255)
        label = (round(w * 0.05), round(h * 0.45), round(w * 0.95), round(h * 0.75))
    elif shape == "pouch":
        draw.polygon(
            [(round(w * 0.12), 0), (round(w * 0.88), 0), (w - 1, h // 2), (0, h // 2)], 255
        )
        draw.rounded_rectangle((0, h // 2 - 2, w - 1, h - 1), radius=w // 4, fill=255)
    else:  # pragma: no cover - SHAPES lists every case above
        raise ValueError(f"unknown shape {shape}")
    return mask, label, cap


def _pattern_mask(pattern: str, w: int, h: int, seed: int, scale: float = 1.0) -> Image.Image:
    """Where the accent colour shows on the body, as an L mask; ``scale`` sizes its cells."""
    ys, xs = np.mgrid[0:h, 0:w]
    sw, sh = int(w * scale), int(h * scale)  # w and h themselves at scale 1
    period = max(4, sh // 7)
    if pattern == "solid":
        on = np.zeros((h, w), bool)
    elif pattern == "hstripes":
        on = (ys // (period // 2)) % 2 == 0
    elif pattern == "vstripes":
        on = (xs // max(3, sw // 8)) % 2 == 0
    elif pattern == "dots":
        cell = max(6, sw // 5)
        dy, dx = ys % cell - cell / 2, xs % cell - cell / 2
        on = dy * dy + dx * dx < (cell * 0.3) ** 2
    elif pattern == "checker":
        cell = max(4, sw // 5)
        on = ((xs // cell) + (ys // cell)) % 2 == 0
    elif pattern == "diagonal":
        shift = seed % period
        on = ((xs + ys + shift) // (period // 2)) % 2 == 0
    elif pattern == "grid":
        cell = max(6, sw // 4)
        on = (xs % cell < cell // 5) | (ys % cell < cell // 5)
    elif pattern == "waves":
        phase = (seed % 97) / 97 * 2 * np.pi
        on = ((ys + period * 0.4 * np.sin(xs / max(4, sw / 4) + phase)) // period) % 2 == 0
    elif pattern == "halves":
        on = ys < h * (0.3 + 0.4 * (seed % 89) / 89)
    elif pattern == "band":
        top = h * (0.15 + 0.5 * (seed % 83) / 83)
        on = (ys >= top) & (ys < top + 2 * period)
    else:  # pragma: no cover - PATTERNS lists every case above
        raise ValueError(f"unknown pattern {pattern}")
    return Image.fromarray(on.astype(np.uint8) * 255, "L")


def _draw_label(body: Image.Image, box: tuple[int, int, int, int], style: ProductStyle) -> None:
    draw = ImageDraw.Draw(body)
    x0, y0, x1, y1 = box
    if style.label == "band":
        draw.rectangle((0, y0, body.width - 1, y1), fill=style.label_bg)
    elif style.label == "oval":
        draw.ellipse(box, fill=style.label_bg, outline=style.label_fg, width=2)
    else:  # badge: a circle in the upper body
        r = min(x1 - x0, y1 - y0) // 2 + 4
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=style.label_bg)
    font = _font(max(8, round((y1 - y0) * 0.55)))
    draw.text(
        ((x0 + x1) / 2, (y0 + y1) / 2), style.brand, fill=style.label_fg, font=font, anchor="mm"
    )


def _draw_back(body: Image.Image, box: tuple[int, int, int, int], style: ProductStyle) -> None:
    """Fine print and a barcode: what turning the product around shows."""
    draw = ImageDraw.Draw(body)
    w, h = body.size
    x0, x1 = round(w * 0.14), round(w * 0.86)
    panel_top = round(h * 0.3)
    draw.rectangle((x0, panel_top, x1, round(h * 0.6)), fill=(238, 238, 230))
    for i in range(4):
        y = panel_top + 6 + i * 9
        draw.line((x0 + 4, y, x1 - 4 - (i * 7) % 20, y), fill=(120, 120, 120), width=3)
    bars = np.random.default_rng(style.barcode).integers(1, 4, size=24)
    bx, top, bottom = x0, round(h * 0.66), round(h * 0.84)
    draw.rectangle((x0, top - 3, x1, bottom + 3), fill=(250, 250, 250))
    for i, width in enumerate(bars):
        if bx + width > x1:
            break
        if i % 2 == 0:
            draw.rectangle((bx, top, bx + width - 1, bottom), fill=(20, 20, 20))
        bx += int(width)


def _outline(body: Image.Image, silhouette: Image.Image) -> None:
    """Darken a thin rim so the product stands out from shelves and other products."""
    inner = silhouette.filter(ImageFilter.MinFilter(5))
    rim = np.asarray(silhouette, np.int16) - np.asarray(inner, np.int16)
    rim_mask = Image.fromarray(np.clip(rim, 0, 255).astype(np.uint8), "L")
    body.paste((30, 30, 30), (0, 0), rim_mask)


def _darker(colour: RGB, factor: float) -> RGB:
    return (round(colour[0] * factor), round(colour[1] * factor), round(colour[2] * factor))


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: identical on every machine with the same Pillow.
    return ImageFont.load_default(size=size)
