"""Seconds per named phase, with the device drained before the clock is read.

CUDA kernels run asynchronously: without a synchronize, a phase would be charged for the
previous phase's work. On the CPU the wait is a no-op.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class Stopwatch:
    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to ``seconds[name]``."""
        self._wait()
        began = time.perf_counter()
        try:
            yield
        finally:
            self._wait()
            self.seconds[name] += time.perf_counter() - began

    def _wait(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
