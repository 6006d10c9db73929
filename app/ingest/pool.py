"""Session memories kept on the device in one block of slots, with LRU eviction.

The block is a ``Memory`` of slots (``[slots, m, C]`` tokens). It starts small and doubles
when every slot is taken, up to ``capacity``; after that a saved session is evicted. So
admitting a session is a copy into a free slot, allocation happens only at a doubling (a
logarithmic number of times), and a worker that serves a few sessions does not hold memory
for a thousand (1024 tiny-preset slots are 0.6 GB).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch

from model import Memory, ModelConfig


class PoolFullError(Exception):
    """Every slot holds a session that may not be evicted yet."""


class DevicePool:
    def __init__(
        self,
        cfg: ModelConfig,
        capacity: int,
        device: str,
        *,
        initial_slots: int = 1,
        features: int = 0,
    ) -> None:
        """``features`` > 0: sessions keep their sampler inputs of that width between
        writes (``Memory.features``; ``LongVMNet.write_features``), and every memory
        admitted must carry them."""
        # one slot to start, doubling as sessions come: a memory is megabytes (a paper-preset
        # one 18 MB), and a worker that holds one session should not hold eight
        self.capacity = capacity
        self._cfg, self._device, self._features = cfg, device, features
        slots = min(capacity, initial_slots)
        self.block = Memory.empty(cfg, slots, device=device, features=features)  # (slots, m, C)
        self._slots: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._free = list(range(slots - 1, -1, -1))

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._slots

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def keeps_features(self) -> bool:
        return self._features > 0

    @property
    def nbytes(self) -> int:
        b = self.block
        kept = [b.tokens, b.time_index, b.spatial_index, b.valid, b.frames_seen]
        if b.features is not None:
            kept.append(b.features)
        return sum(t.numel() * t.element_size() for t in kept)

    def admit(self, session_id: str, memory: Memory, evictable: Sequence[str]) -> list[str]:
        """Place ``memory`` (one session) in a slot; returns the sessions evicted for it.

        Only sessions in ``evictable`` (saved since their last change) may be evicted,
        oldest use first; raises PoolFullError when none is.
        """
        evicted: list[str] = []
        if not self._free and self.block.batch_size < self.capacity:
            self._grow()
        if not self._free:
            allowed = set(evictable)
            victim = next((s for s in self._slots if s in allowed), None)
            if victim is None:
                raise PoolFullError(f"all {self.capacity} memory slots hold unsaved sessions")
            self.release(victim)
            evicted.append(victim)
        slot = self._free.pop()
        self._slots[session_id] = slot
        self.block.put_([slot], memory)
        return evicted

    def _grow(self) -> None:
        """Double the block (at most to ``capacity``); slots keep their numbers."""
        old = self.block.batch_size
        new = min(self.capacity, 2 * old)
        block = Memory.empty(self._cfg, new, device=self._device, features=self._features)
        block.put_(list(range(old)), self.block)
        self.block = block
        self._free = list(range(new - 1, old - 1, -1))

    def release(self, session_id: str) -> None:
        slot = self._slots.pop(session_id, None)
        if slot is not None:
            self._free.append(slot)

    def get(self, session_ids: Sequence[str]) -> Memory:
        """The sessions' memories as a batch (copies), marking them recently used."""
        for s in session_ids:
            self._slots.move_to_end(s)
        return self.block.select([self._slots[s] for s in session_ids])

    def put(self, session_ids: Sequence[str], memory: Memory) -> None:
        self.block.put_([self._slots[s] for s in session_ids], memory)

    def device_bytes_in_use(self) -> int:
        if self.block.device.type == "cuda":
            return int(torch.cuda.memory_allocated(self.block.device))
        return self.nbytes
