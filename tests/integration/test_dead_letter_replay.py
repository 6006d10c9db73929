"""Operator tools on the real broker and PostgreSQL: a dead letter is replayed into its
session once its cause is fixed, and the session ends exactly as if it had never failed."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner
from kafka import KafkaProducer

from app.cli import main
from app.publish import session_messages
from app.settings import Settings

from .conftest import ingest_until_idle

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def settings(kafka_pg_settings: Settings) -> Settings:
    return kafka_pg_settings


def test_a_dead_letter_is_replayed_into_its_session_once_fixed(
    settings: Settings, synth_videos, reference_memory, stored_memory
) -> None:
    messages = list(session_messages(synth_videos[0], "replayed", chunk_seconds=3.0))
    sizes = [len(m.value) if m.t0 is not None else 0 for m in messages]
    big = sizes.index(max(sizes))  # the first largest chunk: refused under a tighter limit
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)

    def send(upto: slice) -> None:
        for m in messages[upto]:
            producer.send(settings.topic, key=m.key, value=m.value, headers=m.headers)
        producer.flush()

    send(slice(0, big + 1))
    tight = dataclasses.replace(settings, max_message_bytes=max(sizes) - 1)
    ingest_until_idle(tight)
    env = settings.to_env()  # the fix: the usual limit again
    runner = CliRunner()
    listed = json.loads(runner.invoke(main, ["deadletters", "list", "--json"], env=env).output)
    (letter,) = listed
    assert letter["session"] == "replayed" and "byte limit" in letter["reason"]
    shown = json.loads(
        runner.invoke(main, ["deadletters", "show", str(letter["id"]), "--json"], env=env).output
    )
    assert shown["headers"]["seq"] == str(big) and shown["size"] == max(sizes)

    refused = runner.invoke(main, ["deadletters", "replay", str(letter["id"])], env=tight.to_env())
    assert refused.exit_code == 1 and "still refused" in refused.output  # not fixed yet
    replayed = runner.invoke(main, ["deadletters", "replay", str(letter["id"]), "--json"], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["to_offset"] == big + 1
    again = runner.invoke(main, ["deadletters", "replay", str(letter["id"])], env=env)
    assert again.exit_code == 1 and "second replay" in again.output

    send(slice(big + 1, None))
    ingest_until_idle(settings)
    memory, snap = stored_memory(settings, "replayed")
    assert snap.status == "closed" and not snap.losses
    assert memory.equal(reference_memory(synth_videos[0]))  # as if it had never failed
    producer.close()
