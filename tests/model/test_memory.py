import numpy as np
import pytest
import torch

from model import Memory, ModelConfig


def _filled(cfg: ModelConfig, batch: int, seed: int = 0) -> Memory:
    g = torch.Generator().manual_seed(seed)
    memory = Memory.empty(cfg, batch)
    memory.tokens.normal_(generator=g)
    memory.time_index.random_(0, 1000, generator=g)
    memory.spatial_index.random_(0, cfg.tokens_per_frame, generator=g)
    memory.valid.bernoulli_(0.7, generator=g)
    memory.frames_seen.random_(0, 1000, generator=g)
    return memory


def test_empty_memory_is_fixed_size_and_all_invalid(tiny_cfg: ModelConfig) -> None:
    memory = Memory.empty(tiny_cfg, 3)
    assert memory.tokens.shape == (3, tiny_cfg.memory_size, tiny_cfg.backbone_channels)
    assert (len(memory), memory.size, memory.channels) == (3, 256, 576)
    assert not memory.valid.any()
    assert memory.frames_seen.tolist() == [0, 0, 0]


def test_select_cat_and_stack_invert_each_other(tiny_cfg: ModelConfig) -> None:
    memory = _filled(tiny_cfg, 4)
    parts = [memory[i] for i in range(4)]
    assert all(len(p) == 1 for p in parts)
    assert Memory.stack(parts).equal(memory)
    assert Memory.cat([memory[0:2], memory[[2, 3]]]).equal(memory)
    swapped = memory.select(torch.tensor([3, 0]))
    assert torch.equal(swapped.tokens[0], memory.tokens[3])
    assert torch.equal(swapped.frames_seen, memory.frames_seen[[3, 0]])


def test_slot_ranges_laid_side_by_side_give_the_memory_back(tiny_cfg: ModelConfig) -> None:
    memory = _filled(tiny_cfg, 2)
    memory.features = torch.randn(2, memory.size, 8)
    first, second = memory.slot_range(0, 100), memory.slot_range(100, memory.size)
    assert (first.size, second.size) == (100, 156)
    joined = Memory.side_by_side([first, second])
    assert joined.equal(memory) and joined.features is not None
    assert torch.equal(joined.features, memory.features)
    second.features = None  # features are laid out only where every part keeps them
    assert Memory.side_by_side([first, second]).features is None
    other = _filled(tiny_cfg, 2, seed=1).slot_range(0, 10)
    with pytest.raises(ValueError, match="same frames"):
        Memory.side_by_side([first, other])


def test_put_overwrites_sessions_in_place(tiny_cfg: ModelConfig) -> None:
    pool = Memory.empty(tiny_cfg, 5)
    written = _filled(tiny_cfg, 2, seed=1)
    pool.put_([4, 1], written)
    assert pool[4].equal(written[0]) and pool[1].equal(written[1])
    assert pool[0].equal(Memory.empty(tiny_cfg, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_array_export_is_lossless(tiny_cfg: ModelConfig, dtype: torch.dtype) -> None:
    memory = _filled(tiny_cfg, 2).to(dtype=dtype)
    arrays = memory.to_arrays()
    assert set(arrays) == {"tokens", "time_index", "spatial_index", "valid", "frames_seen"}
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    # What storage keeps: raw bytes, dtype and shape.
    stored = {k: (a.tobytes(), a.dtype.str, a.shape) for k, a in arrays.items()}
    rebuilt = {k: np.frombuffer(b, dtype=d).reshape(s) for k, (b, d, s) in stored.items()}
    back = Memory.from_arrays(rebuilt)
    assert back.equal(memory)
    assert back.tokens.dtype == dtype and back.time_index.dtype == torch.int64


def test_from_arrays_rejects_missing_or_misshapen_fields(tiny_cfg: ModelConfig) -> None:
    arrays = _filled(tiny_cfg, 2).to_arrays()
    with pytest.raises(ValueError, match="lack"):
        Memory.from_arrays({k: v for k, v in arrays.items() if k != "valid"})
    with pytest.raises(ValueError, match="shape"):
        Memory.from_arrays(arrays | {"valid": arrays["valid"][:, :-1]})


def test_nbytes_per_session_counts_every_field(tiny_cfg: ModelConfig) -> None:
    one = Memory.empty(tiny_cfg, 1)
    actual = sum(a.nbytes for a in one.to_arrays().values())
    assert Memory.nbytes_per_session(tiny_cfg) == actual
    paper = ModelConfig.preset("paper")
    assert Memory.nbytes_per_session(paper, torch.float16) == pytest.approx(9.1e6, rel=0.02)


def test_to_changes_token_dtype_but_not_indices(tiny_cfg: ModelConfig) -> None:
    half = _filled(tiny_cfg, 1).to("cpu", torch.float16)
    assert half.tokens.dtype == torch.float16
    assert half.time_index.dtype == torch.int64 and half.valid.dtype == torch.bool
