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


def test_each_distinct_position_encoded_once_gives_the_same_bits() -> None:
    g = torch.Generator().manual_seed(5)
    steps = torch.randint(0, 40_000, (3, 700), generator=g)
    steps[:, 100:400] = steps[:, 100:101]  # runs of one step, as a frame's 16 tokens
    assert torch.equal(TemporalEncoding(64)(steps), sinusoid(steps, 64))
    cells = torch.randint(0, 16, (2, 4352), generator=g)
    rows, cols = cells // 4, cells % 4
    direct = torch.cat((sinusoid(rows, 32), sinusoid(cols, 32)), dim=-1)
    assert torch.equal(SpatialEncoding(64, (4, 4))(cells), direct)
    with torch.device("meta"):  # shapes only (FLOP counting): no unique there
        assert TemporalEncoding(64)(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 64)


def test_the_spatial_table_holds_each_cells_own_encoding() -> None:
    """Every grid cell's encoding is made once per device and copied; each row has the
    bits its cell gets computed alone."""
    encoding = SpatialEncoding(64, (4, 4))
    first = encoding(torch.tensor([[5, 0], [15, 5]]))
    table = encoding._table
    assert table is not None and table.shape == (16, 64)
    for cell in (0, 5, 15):
        alone = torch.cat(
            (sinusoid(torch.tensor([cell // 4]), 32), sinusoid(torch.tensor([cell % 4]), 32)), -1
        )
        assert torch.equal(table[cell], alone[0])
    assert torch.equal(first[0, 0], first[1, 1]) and torch.equal(first[1, 0], table[15])
    first += 1.0  # a caller's copy: the table is not written through it
    assert torch.equal(encoding(torch.tensor([5]))[0], table[5]) and encoding._table is table
