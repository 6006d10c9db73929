"""`--until-idle` means caught up, not cut off: a broker that goes away while records wait
ends the run with an error, not a quiet success (a private broker, so that it can be stopped)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from app import contract
from app import db as database_ops
from app.contract import MessageType
from app.db import Database
from app.devstack import KafkaBroker
from app.errors import BrokerUnavailableError
from app.ingest import IngestEngine, KafkaSource
from app.model_runtime import load_model
from app.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

MESSAGES = 8
VALUE_BYTES = 400_000  # a consumer fetch (about 1.1 MB) holds two or three of them


def test_a_broker_outage_is_not_idle(
    pg_settings: Settings, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    broker = KafkaBroker.start(tmp_path / "kafka")
    try:
        settings = dataclasses.replace(
            pg_settings,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic=f"outage-{uuid.uuid4().hex[:8]}",
            group=f"outage-{uuid.uuid4().hex[:8]}",
            checkpoint_path=str(tiny_checkpoint),
            device="cpu",
            commit_interval_s=0.2,
            ingest_batch_records=1,
        )
        database_ops.upgrade(settings)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.create_topics([NewTopic(settings.topic, 1, 1)])
        admin.close()
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, max_request_size=2_000_000
        )
        headers = contract.headers_for(
            MessageType.CHUNK, seq=1, camera="c", t0=0.0, content_type="video/mp2t"
        )
        for i in range(MESSAGES):  # undecodable chunks: cheap to apply, each a dead letter
            producer.send(
                settings.topic, key=f"o-{i}".encode(), value=b"\x00" * VALUE_BYTES, headers=headers
            )
        producer.flush()
        producer.close()

        database = Database(settings)
        engine = IngestEngine(settings, database, load_model(settings), KafkaSource(settings))

        def stop_broker_after_the_first_record() -> None:
            deadline = time.monotonic() + 60
            while engine.stats.applied < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            broker.stop()

        stopper = threading.Thread(target=stop_broker_after_the_first_record)
        stopper.start()
        try:
            with pytest.raises(BrokerUnavailableError, match="unreachable"):
                engine.run(until_idle_s=1.0)
        finally:
            stopper.join()
            database.dispose()
        # what it did read was still committed, and the rest was left for later
        assert 1 <= engine.stats.applied < MESSAGES
    finally:
        broker.stop()
