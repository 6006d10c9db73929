import dataclasses

import pytest
import torch

from model import WRITER_NAMES, ClipTokens, LongVMNet, Memory, ModelConfig, make_writer
from model.writers import MemoryWriter, MergeWriter

#: (writer, mixer): every writer, and the neural one also with the Mamba mixer (the others
#: have no sampler to mix with)
WRITE_SETUPS = [*((name, "attention") for name in WRITER_NAMES), ("neural", "mamba")]


def _writer(net: LongVMNet, name: str) -> MemoryWriter:
    return make_writer(name, net.cfg, net.sampler)


def _clip(net: LongVMNet, memory: Memory, tokens: torch.Tensor, mask=None) -> ClipTokens:
    return ClipTokens.from_frames(tokens, memory.frames_seen, net.cfg.clip_frames, mask)


def _assert_canonical(memory: Memory) -> None:
    """Valid slots first, in (time, spatial) order; invalid slots zero."""
    for b in range(len(memory)):
        valid = memory.valid[b]
        n = int(valid.sum())
        assert valid[:n].all() and not valid[n:].any()
        key = memory.time_index[b, :n] * 10_000 + memory.spatial_index[b, :n]
        assert (key[1:] > key[:-1]).all()
        assert not memory.tokens[b, n:].any()


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_writers_are_interchangeable_behind_one_interface(
    tiny_net: LongVMNet, make_tokens, name: str
) -> None:
    cfg, writer = tiny_net.cfg, _writer(tiny_net, name)
    assert writer.name == name
    first = writer.write(
        Memory.empty(cfg, 2), _clip(tiny_net, Memory.empty(cfg, 2), make_tokens(2))
    )
    second = writer.write(first, _clip(tiny_net, first, make_tokens(2, seed=1)))
    for memory in (first, second):
        assert memory.tokens.shape == (2, cfg.memory_size, cfg.backbone_channels)
        _assert_canonical(memory)
    assert first.frames_seen.tolist() == [16, 16] and second.frames_seen.tolist() == [32, 32]
    assert second.valid.all()  # 2 clips offer 2 * 256 tokens for 256 slots
    trained, weights, _, scores = writer.write_train(
        first, _clip(tiny_net, first, make_tokens(2, seed=1)), temperature=1.0
    )
    assert trained.tokens.shape == second.tokens.shape and weights.shape == (2, cfg.memory_size)
    assert torch.equal(weights[trained.valid], torch.ones(int(trained.valid.sum())))
    # Only the neural writer has scores (its evidence loss reads them), one per candidate.
    n = cfg.memory_size + cfg.clip_tokens
    assert (scores is not None and scores.shape == (2, n)) == (name == "neural")


@pytest.mark.parametrize("name", ["neural", "random"])
def test_selecting_writers_copy_candidate_tokens_exactly(
    tiny_net: LongVMNet, make_tokens, name: str
) -> None:
    memory = tiny_net.write_tokens(None, make_tokens(1))
    clip_tokens = make_tokens(1, seed=1)
    written = _writer(tiny_net, name).write(memory, _clip(tiny_net, memory, clip_tokens))
    candidates = torch.cat((memory.tokens[0], clip_tokens[0].flatten(0, 1)))  # (n, C)
    matches = (written.tokens[0][:, None, :] == candidates[None]).all(-1).sum(-1)  # (m,)
    assert (matches == 1).all()


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_memory_holds_exactly_m_tokens_after_100_writes(
    tiny_cfg: ModelConfig, make_tokens, name: str
) -> None:
    net = LongVMNet(dataclasses.replace(tiny_cfg, writer=name)).eval()
    memory = None
    for i in range(100):
        memory = net.write_tokens(memory, make_tokens(1, t=4, seed=i))  # short clips: fast
    assert memory.tokens.shape == (1, tiny_cfg.memory_size, tiny_cfg.backbone_channels)
    assert int(memory.valid.sum()) == tiny_cfg.memory_size
    assert memory.frames_seen.item() == 400
    assert memory.time_index.max() < 400


@pytest.mark.parametrize(("name", "mixer"), WRITE_SETUPS)
def test_inference_writes_are_bit_identical_when_repeated(
    tiny_cfg: ModelConfig, make_tokens, name: str, mixer: str
) -> None:
    cfg = dataclasses.replace(tiny_cfg, writer=name, mixer=mixer)
    net = LongVMNet(cfg).train()  # dropout must not matter
    memory = net.write_tokens(None, make_tokens(2))
    clip = make_tokens(2, seed=7)
    a, b = net.write_tokens(memory, clip), net.write_tokens(memory, clip)
    assert a.equal(b)
    assert a.to_arrays()["tokens"].tobytes() == b.to_arrays()["tokens"].tobytes()


@pytest.mark.parametrize(("name", "mixer"), WRITE_SETUPS)
def test_a_sessions_memory_does_not_depend_on_its_batch(
    tiny_cfg: ModelConfig, make_frames, name: str, mixer: str
) -> None:
    net = LongVMNet(dataclasses.replace(tiny_cfg, writer=name, mixer=mixer)).eval()
    first, second = make_frames(3, 16, seed=1), make_frames(3, 16, seed=2)
    mask = torch.ones(3, 16, dtype=torch.bool)
    mask[1, 9:] = False  # session 1 ends mid-clip
    together = net.write(net.write(None, first), second, mask)
    for i in range(3):
        alone = net.write(net.write(None, first[i : i + 1]), second[i : i + 1], mask[i : i + 1])
        assert alone.equal(together[i]), f"session {i} changed with its batch"


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_masked_frames_never_enter_memory(tiny_net: LongVMNet, make_tokens, name: str) -> None:
    cfg = tiny_net.cfg
    tokens = make_tokens(1)
    tokens[0, 5:] = 1e3  # masked frames carry unmistakable tokens
    mask = torch.zeros(1, cfg.clip_frames, dtype=torch.bool)
    mask[0, :5] = True
    writer = _writer(tiny_net, name)
    empty = Memory.empty(cfg, 1)
    memory = writer.write(empty, _clip(tiny_net, empty, tokens, mask))
    assert int(memory.valid.sum()) == 5 * cfg.tokens_per_frame  # fewer than m: padded slots
    assert memory.tokens.abs().max() < 1e3
    assert memory.frames_seen.item() == 5 and memory.time_index.max() == 4
    _assert_canonical(memory)


def test_shorter_clips_equal_padded_clips(tiny_net: LongVMNet, make_tokens) -> None:
    tokens = make_tokens(2, t=6)
    padded = torch.cat((tokens, torch.randn(2, 10, *tokens.shape[2:])), dim=1)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :6] = True
    assert tiny_net.write_tokens(None, tokens).equal(tiny_net.write_tokens(None, padded, mask))


def test_a_hole_in_the_frame_mask_is_rejected(tiny_net: LongVMNet, make_tokens) -> None:
    mask = torch.ones(1, 16, dtype=torch.bool)
    mask[0, 3] = False
    with pytest.raises(ValueError, match="end of a clip"):
        tiny_net.write_tokens(None, make_tokens(1), mask)


def test_merge_averages_the_most_cosine_similar_adjacent_pair() -> None:
    # Four one-token frames; (1, 2) is the most similar adjacent pair by cosine, while
    # (0, 3) would win by raw dot product (long vectors) but are not adjacent.
    frames = torch.tensor([[10.0, 0.0], [0.0, 1.0], [0.1, 1.0], [10.0, 0.5]])
    tokens = frames.view(1, 4, 1, 2)  # (B, T, S=1, C=2)
    memory = Memory.zeros(1, 3, 2)
    memory.frames_seen.fill_(7)
    clip = ClipTokens.from_frames(tokens, memory.frames_seen, clip_frames=4)
    merged = MergeWriter(3).write(memory, clip)
    assert merged.valid.all()
    assert torch.allclose(merged.tokens[0], torch.tensor([[10.0, 0.0], [0.05, 1.0], [10.0, 0.5]]))
    assert merged.time_index[0].tolist() == [7, 8, 10]  # the merged token keeps the earlier time
    assert merged.frames_seen.item() == 11


def test_random_writer_is_seeded_by_session_position(tiny_cfg: ModelConfig, make_tokens) -> None:
    net = LongVMNet(dataclasses.replace(tiny_cfg, writer="random")).eval()
    memory = net.write_tokens(None, make_tokens(1))
    clip = make_tokens(1, seed=3)
    again = net.write_tokens(memory, clip)
    assert again.equal(net.write_tokens(memory, clip))
    later = Memory(
        memory.tokens,
        memory.time_index,
        memory.spatial_index,
        memory.valid,
        memory.frames_seen + 16,
    )
    assert not torch.equal(net.write_tokens(later, clip).spatial_index, again.spatial_index)
    reseeded = LongVMNet(dataclasses.replace(tiny_cfg, writer="random", writer_seed=1)).eval()
    assert not reseeded.write_tokens(memory, clip).equal(again)


def test_a_young_memory_keeps_every_clip_without_scoring_it(
    tiny_cfg: ModelConfig, make_tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While memory and clip together hold at most m real tokens, every one is kept
    whatever its score: the sampler scores nothing until the memory is full, and then
    every write (a session whose memory is full is scored even beside a young one)."""
    k = tiny_cfg.clip_frames * tiny_cfg.tokens_per_frame
    torch.manual_seed(0)
    tiny_net = LongVMNet(dataclasses.replace(tiny_cfg, memory_size=3 * k)).eval()
    cfg = tiny_net.cfg
    scored: list[int] = []
    score_inputs = tiny_net.sampler.score_inputs
    monkeypatch.setattr(
        tiny_net.sampler,
        "score_inputs",
        lambda x, *rest: scored.append(x.shape[0]) or score_inputs(x, *rest),
    )
    clips = [make_tokens(1, seed=i) for i in range(cfg.memory_size // k + 1)]
    memory = None
    for clip in clips[:-1]:  # exactly fills the memory
        memory = tiny_net.write_tokens(memory, clip)
    assert memory is not None and scored == [] and bool(memory.valid.all())
    every = torch.cat([c.reshape(1, k, -1) for c in clips[:-1]], dim=1)  # in time order
    assert torch.equal(memory.tokens, every)
    full = tiny_net.write_tokens(memory, clips[-1])
    assert scored == [1] and bool(full.valid.all())
    young = tiny_net.write_tokens(None, clips[0])
    both = tiny_net.write_tokens(Memory.cat([memory, young]), torch.cat((clips[-1], clips[1])))
    assert scored == [1, 1]  # the full session only
    assert torch.equal(both.tokens[:1], full.tokens)
