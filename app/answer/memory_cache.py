"""Session memories for answering, kept on the device and refreshed when ingest saves anew.

What is kept is the memory as the model has prepared it for questions (``LongVMNet.prepare``:
projected and, for a model that fuses the question in the decoder, encoded), so the
query-independent work is done once per saved memory, not once per batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from app.array_blobs import array_of
from model import Memory, PreparedMemory
from storage.ingest_state import ArrayBlob


class MemoryCache:
    """LRU of ``capacity`` prepared memories keyed by session, each tagged with the saved
    version; ``prepare`` turns a memory read from the database into what is kept."""

    def __init__(
        self, capacity: int, device: str, prepare: Callable[[Memory], PreparedMemory]
    ) -> None:
        self.capacity = capacity
        self.device = device
        self.prepare = prepare
        self._entries: OrderedDict[str, tuple[object, PreparedMemory]] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: str, version: object) -> PreparedMemory | None:
        entry = self._entries.get(session_id)
        if entry is None or entry[0] != version:
            self.misses += 1
            return None
        self._entries.move_to_end(session_id)
        self.hits += 1
        return entry[1]

    def put(self, session_id: str, version: object, blobs: list[ArrayBlob]) -> PreparedMemory:
        arrays = {b.name: array_of(b) for b in blobs}
        memory = self.prepare(Memory.from_arrays(arrays, device=self.device))
        self._entries[session_id] = (version, memory)
        self._entries.move_to_end(session_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return memory
