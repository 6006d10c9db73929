"""The query worker: answers from session memories alone, into PostgreSQL, exactly once."""

from app.answer.worker import AnswerStats, AnswerWorker

__all__ = ["AnswerStats", "AnswerWorker"]
