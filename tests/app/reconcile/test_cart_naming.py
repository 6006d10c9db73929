"""Naming a cart move's product from where the cart band changed, and the trip read so."""

import io

import numpy as np
import pytest
from PIL import Image

from app.reconcile.cart_naming import changed_box, crop_votes, moment_crops, turned
from app.reconcile.compare import DiscrepancyKind
from app.reconcile.moves import Moment
from app.reconcile.trip import read_trip
from app.reconcile.trip_pixels import catalog_pictures, step_frames
from app.video.cart_band import CART_TOP, TOP_MARGIN, cart_cells
from model.evaluate.crop_match import CROP_SIZE
from storage.evidence import Thumbnail

HEIGHT, WIDTH = 144, 192
ACTIVITIES = ("take_from_shelf", "put_in_cart", "inspect", "return_to_shelf", "take_out_of_cart")
BAND = round(CART_TOP * HEIGHT) + TOP_MARGIN


def _pictures() -> np.ndarray:
    """Three products on a white background: red and blue halves, stripes, a green disc."""
    pictures = np.full((3, CROP_SIZE, CROP_SIZE, 3), 255, dtype=np.uint8)
    pictures[0, 8:56, 20:44] = (200, 30, 30)
    pictures[0, 32:56, 20:44] = (30, 30, 200)
    pictures[1, 8:56, 20:44] = (240, 200, 20)
    pictures[1, 8:56:8, 20:44] = (20, 20, 20)
    pictures[1, 9:56:8, 20:44] = (20, 20, 20)
    yy, xx = np.mgrid[:CROP_SIZE, :CROP_SIZE]
    pictures[2][(yy - 32) ** 2 + (xx - 32) ** 2 < 22**2] = (30, 170, 60)
    return pictures


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    wire = rng.integers(90, 130, size=(HEIGHT - BAND, WIDTH, 3))
    frames = []
    for _ in range(count):
        frame = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3)).astype(np.float64)
        frame[BAND:] = wire + rng.normal(0.0, 3.0, wire.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def _lay(frames: list[np.ndarray], picture: np.ndarray, x: int, angle: float) -> None:
    """The product of ``picture`` lies in the cart (28 pixels tall, tilted) in ``frames``."""
    rgba = np.dstack([picture, (np.abs(picture.astype(int) - 255).sum(-1) > 24) * 255])
    piece = Image.fromarray(rgba.astype(np.uint8), "RGBA").crop((18, 6, 46, 58))
    piece = piece.resize((15, 28)).rotate(angle, expand=True, resample=Image.Resampling.BILINEAR)
    for i, frame in enumerate(frames):
        image = Image.fromarray(frame)
        image.paste(piece, (x, BAND + 4), piece)
        frames[i] = np.asarray(image).copy()


def _band(frames: list[np.ndarray]) -> np.ndarray:
    band = np.stack([f[BAND:] for f in frames]).astype(np.float32)
    return band / band.mean(axis=(1, 2, 3), keepdims=True)


def test_the_box_is_where_the_item_appeared() -> None:
    frames = _frames(20)
    later = frames[10:]
    _lay(later, _pictures()[1], x=60, angle=15)
    frames[10:] = later
    box = changed_box(_band(frames), 8, 10)
    assert box is not None
    y0, y1, x0, x1 = box
    assert 55 <= x0 < x1 <= 85 and y1 - y0 >= 20
    assert changed_box(_band(frames), 0, 2) is None  # nothing before the run


def test_a_put_is_named_from_the_frames_after_it_and_a_take_out_from_those_before() -> None:
    pictures = _pictures()
    frames = _frames(30, seed=1)
    after_put = frames[10:]
    _lay(after_put, pictures[0], x=40, angle=-18)
    frames[10:] = after_put
    before_take_out = frames[:20]
    _lay(before_take_out, pictures[2], x=130, angle=10)
    frames[:20] = before_take_out
    moments = [Moment(+1, 8, 10, np.ones(3)), Moment(-1, 20, 22, np.ones(3))]
    crops = moment_crops(frames, moments)
    assert crops.shape == (2, CROP_SIZE, CROP_SIZE, 3)
    votes = crop_votes(crops, pictures)
    assert votes.shape == (2, 3)
    assert np.exp(votes).sum(axis=1) == pytest.approx(np.ones(2))  # log-softmax per crop
    assert votes.argmax(axis=1).tolist() == [0, 2]


def test_pictures_turn_on_their_own_background() -> None:
    pictures = _pictures()
    assert turned(pictures, 0.0) is pictures
    tilted = turned(pictures, 20.0)
    assert tilted.shape == pictures.shape
    assert (tilted[:, 0, 0] == 255).all()  # corners stay the background, not black
    assert not np.array_equal(tilted[0], pictures[0])


def _steps(peaks: dict[str, float], steps: int) -> dict:
    """Per product: a take at 4-7 (all alike), then a put at 7-10 answered ``peaks[sku]``."""
    out = {}
    for sku, peak in peaks.items():
        answers = {a: [0.02] * steps for a in ACTIVITIES}
        answers["take_from_shelf"][4:7] = [0.9] * 3
        answers["put_in_cart"][7:10] = [peak] * 3
        out[sku] = {"fps": 1.0, **answers}
    return out


def test_the_trip_gives_a_put_to_the_product_the_cart_shows() -> None:
    # the answers lean to A (0.6 against 0.5), and the item that appeared in the cart is B's
    pictures = _pictures()
    frames = _frames(30, seed=2)
    after = frames[10:]
    _lay(after, pictures[1], x=70, angle=12)
    frames[10:] = after
    steps = _steps({"A": 0.6, "B": 0.5, "C": 0.02}, 30)
    cells = cart_cells(frames)
    blind = read_trip(steps, {}, cells)
    assert [(d.sku, d.kind) for d in blind.discrepancies] == [("A", DiscrepancyKind.NOT_SCANNED)]
    named = read_trip(steps, {}, cells, frames=frames, pictures=pictures)
    assert named.named and not blind.named
    assert [(d.sku, d.kind) for d in named.discrepancies] == [("B", DiscrepancyKind.NOT_SCANNED)]
    # pictures that are not the answers' products are not read
    assert not read_trip(steps, {}, cells, frames=frames, pictures=pictures[:2]).named


def test_thumbnails_become_one_frame_per_step_the_latest_held() -> None:
    jpegs = [_thumbnail(t, colour) for t, colour in ((0, 10), (2_000_000, 200), (4_000_000, 90))]
    frames = step_frames(jpegs, 1.0, 6)
    assert frames is not None and len(frames) == 6
    assert [int(f.mean() > 150) for f in frames] == [0, 0, 1, 1, 0, 0]
    assert frames[0] is frames[1]  # held, not copied
    assert step_frames([], 1.0, 6) is None
    assert step_frames([Thumbnail(0, 4, 4, b"not a jpeg")], 1.0, 3) is None


def test_catalog_pictures_are_at_the_crops_size_or_none_when_one_is_missing() -> None:
    png = _png(_pictures()[0])
    pictures = catalog_pictures({"A": png, "B": png}, ["A", "B"])
    assert pictures is not None and pictures.shape == (2, CROP_SIZE, CROP_SIZE, 3)
    assert catalog_pictures({"A": png}, ["A", "B"]) is None
    assert catalog_pictures({"A": b"junk"}, ["A"]) is None


def _thumbnail(time_us: int, colour: int) -> Thumbnail:
    out = io.BytesIO()
    Image.fromarray(np.full((12, 16, 3), colour, dtype=np.uint8)).save(out, "JPEG")
    return Thumbnail(time_us, 16, 12, out.getvalue())


def _png(picture: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture).save(out, "PNG")
    return out.getvalue()
