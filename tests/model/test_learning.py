"""The pieces learn together: backbone tokens → trained writes → encoder-decoder → head.

A tiny generated task: each video shows one colour for its first clip and one for its
second (red or blue, independently); an activity query asks which colour its window
[0, T) or [T, 2T) shows. Answering needs the sampler to keep tokens of both clips and the
encoder-decoder to match the window's steps with the tokens' times.
"""

from __future__ import annotations

import numpy as np
import torch

from model import (
    ActivityQuery,
    ActivityTarget,
    LongVMNet,
    ModelConfig,
    loss_weights,
    query_losses,
    weighted_sum,
)

COLOURS = np.array([[220, 30, 30], [30, 30, 220]], dtype=np.uint8)
GREY = np.full((16, 16, 3), 128, dtype=np.uint8)  # the "object": the same for every query


def _videos(rng: np.random.Generator, n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` videos of two clips ``(n, 2t, 32, 32, 3)`` and their colours ``(n, 2)``."""
    colours = rng.integers(0, 2, (n, 2))
    frames = np.repeat(COLOURS[colours], t, axis=1)[:, :, None, None, :]  # (n, 2t, 1, 1, 3)
    frames = np.broadcast_to(frames, (n, 2 * t, 32, 32, 3)).astype(np.int16)
    noise = rng.integers(-40, 41, frames.shape)
    return np.clip(frames + noise, 0, 255).astype(np.uint8), colours


def _queries(rng: np.random.Generator, colours: np.ndarray, t: int) -> tuple[list, list]:
    halves = rng.integers(0, 2, len(colours))
    queries = [ActivityQuery(i, GREY, h * t, h * t + t) for i, h in enumerate(halves)]
    targets = [ActivityTarget([int(colours[i, h])]) for i, h in enumerate(halves)]
    return queries, targets


def test_the_model_learns_which_colour_a_window_shows() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = ModelConfig.preset("tiny", activity_labels=("red", "blue"), dropout=0.0)
    net = LongVMNet(cfg)
    t = cfg.clip_frames
    train_videos, train_colours = _videos(rng, 32, t)
    test_videos, test_colours = _videos(rng, 16, t)
    train_tokens = net.encode_frames(train_videos)  # cached once, as issue-4 training does
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    weights = loss_weights(cfg)
    generator = torch.Generator().manual_seed(0)

    net.train()
    history = []
    for _ in range(250):
        batch = rng.choice(len(train_videos), 8, replace=False)
        tokens = train_tokens[batch]
        memory = net.write_tokens_train(
            None, tokens[:, :t], temperature=1.0, generator=generator
        ).memory
        memory = net.write_tokens_train(
            memory.detach(), tokens[:, t:], temperature=1.0, generator=generator
        ).memory
        queries, targets = _queries(rng, train_colours[batch], t)
        loss = weighted_sum(
            query_losses(net.forward_queries(memory, queries), queries, targets), weights
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
        if len(history) >= 20 and max(history[-10:]) < history[0] / 20:
            break

    assert max(history[-10:]) < history[0] / 20, f"loss went {history[0]:.3f} -> {history[-1]:.3f}"
    net.eval()
    memory = net.populate(test_videos)  # inference: exact top-m, no noise
    correct = 0
    for half in (0, 1):
        queries = [ActivityQuery(i, GREY, half * t, half * t + t) for i in range(len(test_videos))]
        answers = net.answer(memory, queries)
        predicted = np.array([a.probabilities.argmax() for a in answers])
        correct += int((predicted == test_colours[:, half]).sum())
    assert correct / (2 * len(test_videos)) >= 0.9
