"""Copy a checkpoint with another memory size m (``LongVMNet.resize_memory``).

The shipped tiny model trains on 4-minute sessions with m = 256 and reads 20-40 minute
trips with m = 2,048 (docs/MODEL.md, "Deviations"); this writes that checkpoint::

    python -m model.resize RUN OUT --memory-size 2048
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.network import LongVMNet


def resize_checkpoint(source: Path, out: Path, memory_size: int) -> Path:
    """``source``'s weights and config with ``memory_size``, saved to ``out``."""
    net = LongVMNet.load(source)
    net.resize_memory(memory_size)
    return net.save(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--memory-size", type=int, required=True)
    args = parser.parse_args(argv)
    print(resize_checkpoint(args.source, args.out, args.memory_size))


if __name__ == "__main__":
    main()
