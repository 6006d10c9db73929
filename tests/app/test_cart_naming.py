"""Naming a cart move's product from where the cart band changed."""

import numpy as np
import pytest
from PIL import Image

from app.bench.cart_naming import changed_box, crop_votes, moment_crops, turned
from app.reconcile.moves import Moment
from app.video.cart_band import CART_TOP, TOP_MARGIN
from model.evaluate.crop_match import CROP_SIZE

HEIGHT, WIDTH = 144, 192
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
