"""Catalog images go through the backbone once while its weights stay the same."""

from __future__ import annotations

import numpy as np
import torch

from model import LongVMNet, ModelConfig


def test_each_image_is_encoded_once_and_equals_the_backbone_alone(make_frames) -> None:
    torch.manual_seed(0)
    net = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False).eval()
    a, b = make_frames(2, 1, seed=4)[:, 0]
    calls: list[int] = []
    hook = net.backbone.register_forward_hook(lambda _m, args, _out: calls.append(len(args[0])))
    try:
        first = net.encode_object_images([a, b, a])
        second = net.encode_object_images([b, a])
    finally:
        hook.remove()
    assert calls == [1, 1]  # a and b, each alone, once
    assert torch.equal(first[0], first[2]) and torch.equal(second[0], first[1])
    with torch.no_grad():
        alone = net.backbone(torch.as_tensor(a)[None])[0]
    assert torch.equal(first[0], alone)
    assert (net.object_tokens.hits, net.object_tokens.misses) == (3, 2)


def test_new_backbone_weights_forget_what_the_old_ones_computed(make_frames) -> None:
    torch.manual_seed(0)
    net = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False).eval()
    image = make_frames(1, 1, seed=4)[0, 0]
    before = net.encode_object_images([image])
    torch.manual_seed(1)
    other = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False)
    net.backbone.load_state_dict(other.backbone.state_dict())  # in place: new versions
    after = net.encode_object_images([image])
    assert not torch.equal(before, after)
    with torch.no_grad():
        assert torch.equal(after[0], other.backbone.eval()(torch.as_tensor(image)[None])[0])


def test_the_cache_keeps_at_most_its_capacity(make_frames) -> None:
    torch.manual_seed(0)
    net = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False).eval()
    net.object_tokens.capacity = 2
    images = list(make_frames(3, 1, seed=6)[:, 0])
    net.encode_object_images(images)
    assert len(net.object_tokens) == 2
    net.encode_object_images(images[:1])  # the oldest was dropped: encoded again
    assert net.object_tokens.misses == 4


def test_a_batch_of_answers_checks_the_backbone_once(make_frames, monkeypatch) -> None:
    """Activity and time questions ask for catalog images batch by batch; within one
    ``answer`` call the weights cannot change, so they are checked once (0.4 ms each)."""
    from model import object_token_cache
    from model.queries import ActivityQuery, TimeQuery

    torch.manual_seed(0)
    net = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False).eval()
    memory = net.write(None, make_frames(1, net.cfg.clip_frames, seed=2))
    a, b = make_frames(2, 1, seed=4)[:, 0]
    checks: list[int] = []
    check = object_token_cache.ObjectTokenCache._check
    monkeypatch.setattr(
        object_token_cache.ObjectTokenCache,
        "_check",
        lambda cache, backbone: checks.append(1) or check(cache, backbone),
    )
    queries = [ActivityQuery(0, a, 0, 4), TimeQuery(0, 1, b, 0, 16), ActivityQuery(0, b, 2, 9)]
    net.answer(memory, queries, max_tokens=net.cfg.memory_size + 300)  # several batches
    assert len(checks) == 1
    assert net.object_tokens.misses == 2  # a and b, once each
    net.encode_object_images([a])  # outside a batch of answers: checked again
    assert len(checks) == 2


def test_an_images_key_is_its_content_shape_and_type(make_frames) -> None:
    from model.object_token_cache import image_key

    image = make_frames(1, 1, seed=7)[0, 0]  # (H, W, 3) uint8
    same = [image.copy(), torch.as_tensor(image), image.copy(order="F")]
    assert all(image_key(other) == image_key(image) for other in same)
    touched = image.copy()
    touched[0, 0, 0] ^= 1
    assert image_key(touched) != image_key(image)
    assert image_key(image.reshape(image.shape[1], image.shape[0], 3)) != image_key(image)
    assert image_key(image.astype(np.int16)) != image_key(image)


def test_a_batch_of_answers_digests_each_image_object_once(make_frames, monkeypatch) -> None:
    """The worker passes one catalog array per product; within one ``answer`` call its key
    is computed once however many questions (and timeline edges) carry it, and again in
    the next call, where the caller may have changed the array."""
    from model import object_token_cache
    from model.queries import ActivityQuery, TimeQuery

    torch.manual_seed(0)
    net = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False).eval()
    memory = net.write(None, make_frames(1, net.cfg.clip_frames, seed=2))
    a, b = make_frames(2, 1, seed=4)[:, 0]
    same_as_a = a.copy()  # another object, the same content: digested on its own, same key
    digests: list[int] = []
    key = object_token_cache.image_key
    monkeypatch.setattr(object_token_cache, "image_key", lambda i: digests.append(1) or key(i))
    queries = [ActivityQuery(0, a, 0, 4), TimeQuery(0, 1, b, 0, 16), ActivityQuery(0, a, 2, 9)]
    queries.append(ActivityQuery(0, same_as_a, 1, 5))
    first = net.answer(memory, queries, max_tokens=net.cfg.memory_size + 300)
    assert len(digests) == 3 and net.object_tokens.misses == 2
    a[:] = 255 - a  # between calls the caller may write its arrays: keyed afresh
    second = net.answer(memory, queries[:1])
    assert len(digests) == 4 and net.object_tokens.misses == 3
    assert not np.array_equal(first[0].probabilities, second[0].probabilities)
    assert net.object_tokens._keys == {}  # nothing held after the call


def test_a_replaced_backbone_weight_is_seen_without_walking_every_check(make_frames) -> None:
    """The backbone's tensors are found once; a check reads their versions. Assigning a new
    weight registers it, which makes the next check walk the modules again."""
    torch.manual_seed(0)
    net = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False).eval()
    image = make_frames(1, 1, seed=4)[0, 0]
    before = net.encode_object_images([image])
    walked = net.object_tokens._walked
    net.encode_object_images([image])
    assert net.object_tokens._walked is walked and net.object_tokens.misses == 1
    conv = next(m for m in net.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    conv.weight = torch.nn.Parameter(conv.weight.detach() * 2)  # a new tensor, not in place
    after = net.encode_object_images([image])
    assert net.object_tokens._walked is not walked and net.object_tokens.misses == 2
    assert not torch.equal(before, after)
    with torch.no_grad():
        assert torch.equal(after[0], net.backbone(torch.as_tensor(image)[None])[0])


def test_answers_read_each_images_inputs_made_once_with_the_batchs_bits(
    make_frames, monkeypatch
) -> None:
    """In inference an image's projected tokens and pooled tokens are made once and kept:
    stacked, they are the bits of the batch's own (``EncoderDecoder.object_inputs`` of
    the stacked tokens); new weights in the projection, or a new backbone, make them anew."""
    from model.encoder_decoder import ObjectInputs

    torch.manual_seed(0)
    net = LongVMNet(ModelConfig.preset("tiny"), pretrained_backbone=False).eval()
    a, b, c = make_frames(3, 1, seed=4)[:, 0]
    made: list[int] = []
    object_inputs = net.encoder_decoder.object_inputs

    def counted(tokens: torch.Tensor) -> ObjectInputs:
        made.append(len(tokens))
        return object_inputs(tokens)

    monkeypatch.setattr(net.encoder_decoder, "object_inputs", counted)
    with torch.no_grad():
        kept = net._object_inputs([a, b, a, c])
        again = net._object_inputs([c, a])
        assert isinstance(kept, ObjectInputs) and isinstance(again, ObjectInputs)
        assert made == [1, 1, 1]  # a, b and c, once each
        batch = object_inputs(net.encode_object_images([a, b, a, c]))
        assert torch.equal(kept.projected, batch.projected)
        assert torch.equal(kept.pooled, batch.pooled)
        assert torch.equal(again.pooled, batch.pooled[[3, 0]])

        net.encoder_decoder.project.linear.weight.mul_(2.0)  # in place: a new version
        changed = net._object_inputs([a])
        assert len(made) == 4 and not torch.equal(changed.projected, kept.projected[:1])
        net.backbone.model.conv_stem.weight.mul_(0.5)  # new tokens: inputs made anew
        net._object_inputs([a])
        assert len(made) == 5
    assert isinstance(net._object_inputs([a]), torch.Tensor)  # gradients on: the tokens


def test_new_channel_statistics_make_the_images_inputs_anew(make_frames) -> None:
    """The statistics are buffers, not parameters: they change the projected tokens too."""
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", token_standardisation=True)
    net = LongVMNet(cfg, pretrained_backbone=False).eval()
    image = make_frames(1, 1, seed=4)[0, 0]
    with torch.no_grad():
        before = net._object_inputs([image])
        net.fit_token_standardisation([torch.randn(2, 3, cfg.backbone_channels) * 4.0 + 1.0])
        after = net._object_inputs([image])
        assert not torch.equal(after.projected, before.projected)
        fresh = net.encoder_decoder.object_inputs(net.encode_object_images([image]))
        assert torch.equal(after.projected, fresh.projected)
