"""The re-reading baseline's accuracy on the same queries as the memory's (paper Table 2).

Every query is answered from its own window's backbone tokens (read from the token cache,
as a re-reading system would read them from the video), cut into clips of ``T`` frames and
aggregated (``model.rereading``); nothing is remembered between queries. Scored exactly as
the two-stage evaluation scores the memory's answers, so the two rows compare directly.
"""

from __future__ import annotations

import dataclasses
import time

from model.data.split import SplitData
from model.evaluate.metrics import AGE_BUCKETS, QueryScore, summarize
from model.evaluate.two_stage import EvalResult, by_age, score
from model.memory import Memory
from model.network import LongVMNet
from model.queries import Query
from model.rereading import clip_queries, combine, split_clips, window_memory

#: the ``writer`` field of this baseline's result rows
REREADING = "re-reading"


def evaluate_rereading(net: LongVMNet, data: SplitData) -> EvalResult:
    """Every query of ``data`` answered by re-reading its window; a video's queries share one
    ``net.answer`` call (batched as the memory's answers are), each reading only its own clips."""
    t = net.cfg.clip_frames
    began = time.perf_counter()
    scores: list[QueryScore] = []
    for video_id, examples in data.examples.items():
        if not examples:
            continue
        tokens = data.tokens[video_id].to(net.device)  # (N, S, C) at the memory FPS
        memories: list[Memory] = []
        parts: list[Query] = []  # every query's clips; clip k of a query reads memory row k
        for example in examples:
            query = example.query
            clips = split_clips(tokens[query.start : query.end], t)
            memories.append(window_memory(clips, query.start, t))
            first = len(parts)  # one memory row per clip: this query's rows start here
            parts += [
                dataclasses.replace(part, memory_index=first + part.memory_index)
                for part in clip_queries(query, len(clips), t)
            ]
        answers = net.answer(Memory.cat(memories), parts)
        first = 0
        for example, memory in zip(examples, memories, strict=True):
            n_clips = memory.batch_size
            scores.append(score(example, combine(answers[first : first + n_clips]), net.cfg.fps))
            first += n_clips
    answered = time.perf_counter()
    return EvalResult(
        writer=REREADING,
        split=data.split,
        videos=len(data.examples),
        queries=len(scores),
        summary=summarize(scores),
        populate_seconds=0.0,  # nothing is read ahead: every query reads its own window
        answer_seconds=answered - began,
        by_age=summarize(by_age(scores, data, net.cfg.fps), AGE_BUCKETS),
    )
