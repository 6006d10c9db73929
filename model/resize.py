"""Copy a checkpoint with another inference setting that no weight depends on.

- ``--memory-size M``: the memory size m (``LongVMNet.resize_memory``). The shipped tiny
  model trains on 4-minute sessions with m = 256 and reads 20-40 minute trips with
  m = 2,048 (docs/MODEL.md, "Deviations");
- ``--time-answers head|activity_steps``: how time questions are answered
  (``ModelConfig.time_answers``);
- ``--sampler-window W``: the sampler reads its candidates in blocks of W (-1: all at once;
  ``ModelConfig.sampler_window``).

::

    python -m model.resize RUN OUT --memory-size 2048 --time-answers activity_steps
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.config import TIME_ANSWERS
from model.network import LongVMNet


def resize_checkpoint(
    source: Path,
    out: Path,
    memory_size: int | None = None,
    time_answers: str | None = None,
    sampler_window: int | None = None,
) -> Path:
    """``source``'s weights and config with the given settings changed, saved to ``out``."""
    net = LongVMNet.load(source)
    if memory_size is not None:
        net.resize_memory(memory_size)
    if time_answers is not None:
        net.set_answering(time_answers=time_answers)
    if sampler_window is not None:
        net.set_sampler_window(sampler_window)
    return net.save(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--memory-size", type=int, default=None, help="tokens kept per session (m)")
    parser.add_argument(
        "--time-answers",
        choices=TIME_ANSWERS,
        default=None,
        help="time questions from the start/end head or from the per-step activity answer",
    )
    parser.add_argument(
        "--sampler-window",
        type=int,
        default=None,
        help="the sampler attends in blocks of this many candidates (-1: all at once)",
    )
    args = parser.parse_args(argv)
    print(
        resize_checkpoint(
            args.source, args.out, args.memory_size, args.time_answers, args.sampler_window
        )
    )


if __name__ == "__main__":
    main()
