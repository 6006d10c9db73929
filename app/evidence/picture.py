"""One flag's evidence as one picture: caption on top, a strip of frames per moment, and
the catalog image of the flagged product beside them.

Pure drawing: everything it shows is given (``FlagView``); where each part landed is
returned with the image (``Drawn``), for tests and for anyone who crops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from app.evidence.boxes import Box

FRAME_HEIGHT = 180  # thumbnails are enlarged to this: readable on a staff screen
CATALOG_SIDE = 200
MARGIN = 12
GAP = 8
LINE = 20  # height of one text line
BORDER = 3
FONT_SIZE = 14

BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
MUTED = (110, 110, 110)
INSIDE = (255, 150, 0)  # frames within the event's time evidence
CONTEXT = (190, 190, 190)  # frames just before or after it
BOX = (230, 0, 60)
EMPTY = (235, 235, 235)

Rect = tuple[int, int, int, int]  # left, top, right, bottom (exclusive)


@dataclass(frozen=True)
class Frame:
    """One thumbnail in a strip."""

    time_s: float
    image: Image.Image
    inside: bool  # within the moment itself, not its context
    box: Box | None = None


@dataclass(frozen=True)
class Strip:
    """One moment: its title and frames, or a note saying why it has none."""

    title: str
    frames: Sequence[Frame]
    note: str = ""


@dataclass(frozen=True)
class FlagView:
    caption: Sequence[str]
    strips: Sequence[Strip]
    catalog_image: Image.Image | None
    catalog_label: str


@dataclass
class Drawn:
    image: Image.Image
    catalog: Rect | None = None  # where the catalog image was pasted
    frames: list[Rect] = field(default_factory=list)  # each frame's pixels, strip by strip


def draw(view: FlagView) -> Drawn:
    """The picture of ``view``; its size follows from the text lines and frames it holds."""
    font = ImageFont.load_default(size=FONT_SIZE)
    sized = [[_enlarged(f.image) for f in s.frames] for s in view.strips]
    strip_widths = [
        sum(im.width + 2 * BORDER for im in row) + GAP * max(0, len(row) - 1) if row else 420
        for row in sized
    ]
    left_width = max([*strip_widths, 420])
    row_height = LINE + 2 * BORDER + FRAME_HEIGHT + LINE
    strips_height = len(view.strips) * (row_height + GAP)
    catalog_height = LINE + CATALOG_SIDE + 2 * LINE
    caption_height = LINE * len(view.caption) + GAP
    width = MARGIN + left_width + 2 * GAP + CATALOG_SIDE + MARGIN
    height = MARGIN + caption_height + max(strips_height, catalog_height) + MARGIN
    image = Image.new("RGB", (width, height), BACKGROUND)
    pen = ImageDraw.Draw(image)
    drawn = Drawn(image)

    y = MARGIN
    for line in view.caption:
        pen.text((MARGIN, y), line, fill=TEXT, font=font)
        y += LINE
    top = y + GAP

    y = top
    for strip, row in zip(view.strips, sized, strict=True):
        pen.text((MARGIN, y), strip.title, fill=TEXT, font=font)
        frame_top = y + LINE
        if not row:
            rect = (MARGIN, frame_top, MARGIN + left_width, frame_top + FRAME_HEIGHT + 2 * BORDER)
            pen.rectangle((rect[0], rect[1], rect[2] - 1, rect[3] - 1), fill=EMPTY)
            pen.text((MARGIN + GAP, frame_top + GAP), strip.note, fill=MUTED, font=font)
        x = MARGIN
        for frame, shown in zip(strip.frames, row, strict=True):
            outer = (
                x,
                frame_top,
                x + shown.width + 2 * BORDER,
                frame_top + shown.height + 2 * BORDER,
            )
            pen.rectangle(
                (outer[0], outer[1], outer[2] - 1, outer[3] - 1),
                fill=INSIDE if frame.inside else CONTEXT,
            )
            inner = (x + BORDER, frame_top + BORDER)
            image.paste(shown, inner)
            drawn.frames.append((*inner, inner[0] + shown.width, inner[1] + shown.height))
            if frame.box is not None:
                _draw_box(pen, frame.box, inner, shown.size)
            label = f"{frame.time_s:.1f} s"
            pen.text((x, outer[3] + 2), label, fill=TEXT if frame.inside else MUTED, font=font)
            x = outer[2] + GAP
        y += row_height + GAP

    cx = MARGIN + left_width + 2 * GAP
    pen.text((cx, top), "catalog image", fill=TEXT, font=font)
    side_top = top + LINE
    if view.catalog_image is not None:
        shown = _fitted(view.catalog_image, CATALOG_SIDE)
        at = (cx + (CATALOG_SIDE - shown.width) // 2, side_top + (CATALOG_SIDE - shown.height) // 2)
        image.paste(shown, at)
        drawn.catalog = (*at, at[0] + shown.width, at[1] + shown.height)
    else:
        pen.rectangle(
            (cx, side_top, cx + CATALOG_SIDE - 1, side_top + CATALOG_SIDE - 1), fill=EMPTY
        )
    pen.text((cx, side_top + CATALOG_SIDE + 4), view.catalog_label, fill=TEXT, font=font)
    return drawn


def fitted_catalog(image: Image.Image) -> Image.Image:
    """The catalog image as ``draw`` pastes it (tests compare against this)."""
    return _fitted(image, CATALOG_SIDE)


def _enlarged(image: Image.Image) -> Image.Image:
    width = max(1, round(image.width * FRAME_HEIGHT / image.height))
    return image.convert("RGB").resize((width, FRAME_HEIGHT), Image.Resampling.BICUBIC)


def _fitted(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _draw_box(
    pen: ImageDraw.ImageDraw, box: Box, at: tuple[int, int], size: tuple[int, int]
) -> None:
    cx, cy, w, h = box
    width, height = size
    left = at[0] + (cx - w / 2) * width
    top = at[1] + (cy - h / 2) * height
    right = at[0] + (cx + w / 2) * width
    bottom = at[1] + (cy + h / 2) * height
    # a box the model put partly outside the frame is cut at its edge
    left, right = max(at[0], left), min(at[0] + width - 1, right)
    top, bottom = max(at[1], top), min(at[1] + height - 1, bottom)
    if right > left and bottom > top:
        pen.rectangle((left, top, right, bottom), outline=BOX, width=3)
