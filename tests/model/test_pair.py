"""A model pair: its members' memories of one session side by side, the lead's answers,
every member's names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from model import ActivityPrediction, ActivityQuery, LongVMNet, Memory, ModelConfig, ObjectQuery
from model.errors import CheckpointError
from model.pair import ModelPair, load_served
from model.pair_config import (
    checkpoint_files,
    is_pair_checkpoint,
    pair_members,
    write_pair_checkpoint,
)
from model.prepared import PreparedMemory


@pytest.fixture(scope="module")
def pair(tiny_pair_checkpoint: Path) -> ModelPair:
    served = load_served(tiny_pair_checkpoint)
    assert isinstance(served, ModelPair)
    return served


def _clips(batch: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, 96, 128, 3), dtype=np.uint8) for _ in range(batch)]


def _written(net: LongVMNet | ModelPair, clips_per_write: list[list[np.ndarray]]) -> Memory:
    memory = None
    for clips in clips_per_write:
        tokens = torch.stack(net.encode_clips(clips))  # (B, T, S, C)
        memory = net.write_tokens(memory, tokens)
    assert memory is not None
    return memory


def test_a_pair_checkpoint_names_its_members_relative_to_itself(
    tiny_pair_checkpoint: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    assert is_pair_checkpoint(tiny_pair_checkpoint)
    assert not is_pair_checkpoint(tiny_checkpoint)
    name, lead, (partner,) = pair_members(tiny_pair_checkpoint)
    assert (name, lead) == ("tiny-pair", tiny_checkpoint.resolve())
    config = json.loads((tiny_pair_checkpoint / "config.json").read_text())
    assert not Path(config["lead"]).is_absolute()
    assert not Path(config["partners"][0]).is_absolute()
    # the three directories move together
    moved = tmp_path / "moved"
    shutil.copytree(tiny_checkpoint, moved / "lead")
    shutil.copytree(partner, moved / "partner")
    write_pair_checkpoint(moved / "pair", "p", moved / "lead", [moved / "partner"])
    shutil.move(moved, tmp_path / "elsewhere")
    assert pair_members(tmp_path / "elsewhere" / "pair")[1] == (tmp_path / "elsewhere" / "lead")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "cartmem.longvmnet"}, "not a model pair's config"),
        ({"format_version": 3}, "pair format version 3"),
        ({"name": ""}, "non-empty 'name'"),
        ({"partners": ["nowhere"]}, "its partner 1 'nowhere'"),
        ({"partners": []}, "needs 'partners'"),
        ({"format_version": 1}, "needs 'partner'"),  # version 1 names one partner
        ({"lead": 7}, "needs 'lead'"),
    ],
)
def test_a_broken_pair_config_is_refused_with_what_is_wrong(
    tiny_pair_checkpoint: Path, tmp_path: Path, change: dict, message: str
) -> None:
    config = json.loads((tiny_pair_checkpoint / "config.json").read_text())
    config["lead"] = str(pair_members(tiny_pair_checkpoint)[1])
    config["partners"] = [str(p) for p in pair_members(tiny_pair_checkpoint)[2]]
    (tmp_path / "config.json").write_text(json.dumps(config | change))
    with pytest.raises(CheckpointError, match=message):
        pair_members(tmp_path)


def test_members_that_read_frames_differently_cannot_pair(tiny_checkpoint: Path) -> None:
    lead = LongVMNet.load(tiny_checkpoint)
    other = LongVMNet(ModelConfig.preset("tiny", clip_frames=8), pretrained_backbone=False)
    with pytest.raises(CheckpointError, match="clip_frames"):
        ModelPair(lead, [other], "p")


def test_each_part_of_a_pair_memory_is_its_member_writing_alone(pair: ModelPair) -> None:
    writes = [_clips(2, seed) for seed in (1, 2, 3)]
    memory = _written(pair, writes)
    (partner_net,) = pair.partners
    assert memory.size == pair.lead.cfg.memory_size + partner_net.cfg.memory_size == 384
    lead, partner = pair.parts(memory)
    assert lead.equal(_written(pair.lead, writes))
    assert partner.equal(_written(partner_net, writes))
    assert memory.frames_seen.tolist() == [48, 48]
    # the service's round trip through storage keeps it bit for bit
    assert Memory.from_arrays(memory.to_arrays()).equal(memory)


def test_write_features_are_each_members_own(pair: ModelPair) -> None:
    memory = _written(pair, [_clips(1, 4)])
    assert pair.write_features == pair.lead.write_features > 0
    carried = pair.with_write_features(memory)
    lead, partner = pair.parts(carried)
    expected_lead = pair.lead.with_write_features(pair.parts(memory)[0])
    assert expected_lead.features is not None and lead.features is not None
    assert torch.equal(lead.features, expected_lead.features)
    assert partner.features is not None
    # a write from carried features gives the memory a write from none gives
    clip = torch.stack(pair.encode_clips(_clips(1, 5)))
    assert pair.write_tokens(carried, clip).equal(pair.write_tokens(memory, clip))


def test_the_pair_answers_as_its_lead_and_names_with_both(pair: ModelPair) -> None:
    memory = _written(pair, [_clips(2, seed) for seed in (6, 7)])
    image = np.random.default_rng(8).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    queries = [
        ActivityQuery(0, image, 0, 32, naming=True),
        ActivityQuery(1, image, 4, 20),
        ObjectQuery(1, 1, 0, 32),
    ]
    answered = pair.answer(pair.prepare(memory), queries)
    lead, partner = pair.parts(memory)
    alone = pair.lead.answer(lead, queries)
    for mine, theirs in zip(answered, alone, strict=True):
        assert type(mine) is type(theirs)
    first, second = answered[0], answered[1]
    assert isinstance(first, ActivityPrediction) and isinstance(second, ActivityPrediction)
    lead_first = alone[0]
    assert isinstance(lead_first, ActivityPrediction) and lead_first.steps is not None
    np.testing.assert_allclose(first.probabilities, lead_first.probabilities, rtol=1e-5)
    [other] = pair.partners[0].answer(partner, [queries[0]])
    assert isinstance(other, ActivityPrediction) and other.steps is not None
    assert first.naming is not None and first.naming.shape == (32, 5)
    np.testing.assert_allclose(first.naming, np.sqrt(lead_first.steps * other.steps), rtol=1e-4)
    assert second.naming is None  # it did not ask


def test_a_memory_written_by_one_model_is_named_by_the_lead_alone(pair: ModelPair) -> None:
    """A session begun before the pair was deployed: its memory is the lead's size."""
    writes = [_clips(1, 9)]
    single = _written(pair.lead, writes)
    fitted = pair.fit_memory(single)
    lead, partner = pair.parts(fitted)
    assert lead.equal(single)
    assert not partner.valid.any() and partner.frames_seen.tolist() == [16]
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    [answer] = pair.answer(single, [ActivityQuery(0, image, 0, 16, naming=True)])
    assert isinstance(answer, ActivityPrediction) and answer.naming is None
    # later frames fill the partner's half from that point on
    after = pair.write_tokens(fitted, torch.stack(pair.encode_clips(_clips(1, 10))))
    assert pair.parts(after)[1].valid.any()


def test_prepared_pair_memories_batch_with_their_partners(pair: ModelPair) -> None:
    one, two = (pair.prepare(_written(pair, [_clips(1, s)])) for s in (11, 12))
    both = PreparedMemory.cat([one, two])
    assert len(both.partners) == 1 and both.partners[0].batch_size == 2
    single = pair.lead.prepare(_written(pair.lead, [_clips(1, 13)]))
    with pytest.raises(ValueError, match="model pair"):
        PreparedMemory.cat([one, single])
    with pytest.raises(ValueError, match="not prepared by this model pair"):
        pair.answer(single, [])


def test_a_pair_version_covers_both_members_weights(
    tiny_pair_checkpoint: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from app.model_runtime import model_version

    _name, lead, (partner,) = pair_members(tiny_pair_checkpoint)
    files = checkpoint_files(tiny_pair_checkpoint)
    assert files[0] == tiny_pair_checkpoint / "config.json"
    assert {f.parent for f in files[1:]} == {lead, partner}
    assert checkpoint_files(tiny_checkpoint) == [
        tiny_checkpoint / "model.safetensors",
        tiny_checkpoint / "config.json",
    ]
    before = model_version("tiny-pair", tiny_pair_checkpoint)
    copy = tmp_path / "partner"
    shutil.copytree(partner, copy)
    other = LongVMNet.load(copy)
    with torch.no_grad():
        next(other.sampler.parameters()).add_(1.0)
    other.save(copy)
    write_pair_checkpoint(tmp_path / "pair", "tiny-pair", lead, [copy])
    assert model_version("tiny-pair", tmp_path / "pair") != before
    assert before.startswith("tiny-pair@")


def test_the_command_writes_a_pair_that_loads_and_refuses_members_that_cannot_pair(
    tiny_pair_checkpoint: Path, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    from model.pair import main

    _name, lead, (partner,) = pair_members(tiny_pair_checkpoint)
    args = ["--lead", str(lead), "--partner", str(partner), "--name", "mine"]
    assert main([*args, "--out", str(tmp_path / "ok")]) == 0
    assert pair_members(tmp_path / "ok")[0] == "mine"
    assert main([*args, "--partner", str(partner), "--out", str(tmp_path / "three")]) == 0
    assert pair_members(tmp_path / "three")[2] == (partner, partner)
    odd = tmp_path / "odd"
    LongVMNet(ModelConfig.preset("tiny", clip_frames=8), pretrained_backbone=False).save(odd)
    with pytest.raises(SystemExit):
        main(
            [
                "--lead",
                str(lead),
                "--partner",
                str(odd),
                "--name",
                "x",
                "--out",
                str(tmp_path / "no"),
            ]
        )
    assert "clip_frames" in capsys.readouterr().err


def test_one_network_loaded_from_a_pair_checkpoint_is_refused_naming_the_members(
    tiny_pair_checkpoint: Path,
) -> None:
    """What ``cartmem eval`` or training say when given the pair instead of a member."""
    with pytest.raises(CheckpointError, match=r"model pair's config.*member checkpoints") as info:
        LongVMNet.load(tiny_pair_checkpoint)
    config = json.loads((tiny_pair_checkpoint / "config.json").read_text())
    assert config["lead"] in str(info.value) and config["partners"][0] in str(info.value)


def test_a_version_1_config_names_its_one_partner(
    tiny_pair_checkpoint: Path, tmp_path: Path
) -> None:
    """Pairs written before partners became a list still load."""
    _name, lead, (partner,) = pair_members(tiny_pair_checkpoint)
    config = {"format": "cartmem.pair", "format_version": 1, "name": "old"}
    config |= {"lead": str(lead), "partner": str(partner)}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert pair_members(tmp_path) == ("old", lead, (partner,))


def test_three_members_name_by_the_cube_root_of_their_answers(pair: ModelPair) -> None:
    (partner,) = pair.partners
    three = ModelPair(pair.lead, [partner, partner], "three")
    writes = [_clips(1, 14)]
    memory = _written(three, writes)
    assert memory.size == pair.lead.cfg.memory_size + 2 * partner.cfg.memory_size
    lead, first, second = three.parts(memory)
    assert first.equal(second) and first.equal(_written(partner, writes))
    image = np.random.default_rng(15).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    query = ActivityQuery(0, image, 0, 16, naming=True)
    [answer] = three.answer(memory, [query])
    [mine] = pair.lead.answer(lead, [query])
    [theirs] = partner.answer(first, [query])
    assert isinstance(answer, ActivityPrediction) and answer.naming is not None
    assert isinstance(mine, ActivityPrediction) and mine.steps is not None
    assert isinstance(theirs, ActivityPrediction) and theirs.steps is not None
    expected = np.cbrt(mine.steps * theirs.steps * theirs.steps)
    np.testing.assert_allclose(answer.naming, expected, rtol=1e-4)


def test_a_pair_that_gained_a_partner_keeps_the_parts_it_had(pair: ModelPair) -> None:
    """A session written under session 34's pair of two, read by a pair of three: the lead's
    and the first partner's parts stay as they were; the new partner starts empty, and no
    row is named until it has seen frames."""
    (partner,) = pair.partners
    three = ModelPair(pair.lead, [partner, partner], "three")
    two_parts = _written(pair, [_clips(1, 16)])
    fitted = three.fit_memory(two_parts)
    lead, first, new = three.parts(fitted)
    old_lead, old_first = pair.parts(two_parts)
    assert lead.equal(old_lead) and first.equal(old_first)
    assert not new.valid.any() and new.frames_seen.tolist() == [16]
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    [answer] = three.answer(fitted, [ActivityQuery(0, image, 0, 16, naming=True)])
    assert isinstance(answer, ActivityPrediction) and answer.naming is None
