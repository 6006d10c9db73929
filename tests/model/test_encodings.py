import math

import torch

from model.encodings import SpatialEncoding, TemporalEncoding, sinusoid


def test_sinusoid_matches_the_formula() -> None:
    pos = torch.tensor([0, 1, 37, 36_000])  # up to a 10-hour session at 1 FPS
    enc = sinusoid(pos, 8)
    assert enc.shape == (4, 8) and enc.dtype == torch.float32
    for row, p in enumerate(pos.tolist()):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert math.isclose(enc[row, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(enc[row, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)


def test_temporal_encoding_tells_neighbouring_steps_apart() -> None:
    enc = TemporalEncoding(64)(torch.arange(100))
    distances = torch.cdist(enc, enc)
    off_diagonal = distances[~torch.eye(100, dtype=torch.bool)]
    assert off_diagonal.min() > 0.1


def test_spatial_encoding_splits_rows_and_columns() -> None:
    enc = SpatialEncoding(16, (4, 5))(torch.tensor([0, 3, 5, 8]))  # cells (0,0) (0,3) (1,0) (1,3)
    rows, cols = enc[:, :8], enc[:, 8:]
    assert torch.equal(rows[0], rows[1]) and torch.equal(rows[2], rows[3])
    assert torch.equal(cols[0], cols[2]) and torch.equal(cols[1], cols[3])
    assert not torch.equal(rows[0], rows[2]) and not torch.equal(cols[0], cols[1])
