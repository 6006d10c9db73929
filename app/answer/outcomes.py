"""What became of one claimed query in a round, and whether a failed one is tried again."""

from __future__ import annotations

from dataclasses import dataclass

from app.answer.payloads import AnswerPayload


@dataclass(frozen=True)
class Answered:
    answer: AnswerPayload


@dataclass(frozen=True)
class Invalid:
    """Can never be answered as asked (unknown session, product or kind, bad window)."""

    reason: str  # one sentence, stored as the query's error


@dataclass(frozen=True)
class TryLater:
    """May be answerable later (no memory yet, a fault in the model or the database)."""

    reason: str


Outcome = Answered | Invalid | TryLater


@dataclass(frozen=True)
class RetryDecision:
    """For a ``TryLater``: retry after ``after_s``, or (None) give up with ``error``."""

    after_s: float | None
    error: str


def retry_decision(reason: str, attempts: int, max_attempts: int, base_s: float) -> RetryDecision:
    """Exponential backoff from ``base_s``; the ``max_attempts``-th failure is the last."""
    if attempts >= max_attempts:
        return RetryDecision(None, f"gave up after {attempts} attempts: {reason}")
    return RetryDecision(base_s * 2 ** (attempts - 1), reason)
