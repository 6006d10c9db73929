"""The query worker: answers from session memories alone, into PostgreSQL, exactly once.

``AnswerWorker`` and ``AnswerStats`` (``app.answer.worker``) load the model's code, so they
are imported on first use: readers of ``app.answer.payloads`` (reconciliation, the CLI)
do not pay for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.answer.worker import AnswerStats, AnswerWorker

__all__ = ["AnswerStats", "AnswerWorker"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from app.answer import worker

        return getattr(worker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
