"""cartmem's Kafka TLS settings against a real broker whose client listener speaks SSL.

A second broker is started for this module (app.devstack, with ``tls``) with a certificate
for 127.0.0.1 signed by a throwaway CA (openssl, in a PKCS12 keystore) on an ``SSL``
listener that asks for no client certificate. Settings read from ``CARTMEM_`` variables
(``CARTMEM_KAFKA_SECURITY_PROTOCOL=SSL``, ``CARTMEM_KAFKA_SSL_CAFILE``) give cartmem's
producer and consumer a message round trip over TLS; the CA of another throwaway CA is
refused.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.devstack import KafkaBroker, KafkaTls
from app.errors import BrokerUnavailableError, DevStackError
from app.kafka_client import make_consumer, make_producer
from app.settings import Settings
from tests.conftest import require_tool
from tests.support.certificates import make_certificates

pytestmark = pytest.mark.kafka
KEYSTORE_PASSWORD = "cartmem-test-keystore"


@dataclass(frozen=True)
class TlsBroker:
    bootstrap: str  # the SSL listener
    ca: Path  # the CA that signed the broker's certificate
    other_ca: Path  # a CA that did not


def _keystore(directory: Path) -> Path:
    """ca.pem, other-ca.pem and broker.p12 (key and chain for 127.0.0.1) in ``directory``:
    the PostgreSQL TLS test's throwaway certificates, put in a PKCS12 keystore for Java."""
    make_certificates(directory)
    subprocess.run(
        ["openssl", "pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key",
         "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
         "-passout", f"pass:{KEYSTORE_PASSWORD}"],
        cwd=directory, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return directory / "broker.p12"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    require_tool("openssl", "openssl")
    certs = tmp_path_factory.mktemp("kafka-tls-certs")
    tls = KafkaTls(_keystore(certs), KEYSTORE_PASSWORD)
    try:
        broker = KafkaBroker.start(tmp_path_factory.mktemp("kafka-tls"), tls=tls)
    except DevStackError as exc:
        pytest.fail(f"could not start the TLS test Kafka broker ({exc})", pytrace=False)
    try:
        yield TlsBroker(broker.ssl_bootstrap_servers, certs / "ca.pem", certs / "other-ca.pem")
    finally:
        broker.stop()


def _ssl_settings(broker: TlsBroker, cafile: Path, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "CARTMEM_DATA_DIR": str(tmp_path),
            "CARTMEM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "CARTMEM_KAFKA_SECURITY_PROTOCOL": "SSL",
            "CARTMEM_KAFKA_SSL_CAFILE": str(cafile),
            "CARTMEM_GROUP": f"tls-{uuid.uuid4().hex[:8]}",
        }
    )


def test_produce_and_consume_over_ssl_with_the_ca_file(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    settings = _ssl_settings(tls_broker, tls_broker.ca, tmp_path)
    assert settings.kafka_security_protocol == "SSL"
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    producer = make_producer(settings)
    try:
        sent = producer.send(topic, key=b"sess-tls", value=b"over TLS").get(timeout=30)
    finally:
        producer.close(timeout=10)
    assert sent.topic == topic

    consumer = make_consumer(settings, topic)
    records: list = []
    try:
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert [(r.key, r.value) for r in records] == [(b"sess-tls", b"over TLS")]


def test_a_ca_that_did_not_sign_the_broker_is_refused(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    """The handshake fails (kafka-python logs why), and cartmem says which broker it could
    not reach and which setting names it; 5 s of retries instead of the default 30."""
    settings = _ssl_settings(tls_broker, tls_broker.other_ca, tmp_path)
    with pytest.raises(BrokerUnavailableError) as refused:
        make_producer(settings, bootstrap_timeout_ms=5000)
    message = str(refused.value)
    assert tls_broker.bootstrap in message
    assert "CARTMEM_KAFKA_BOOTSTRAP_SERVERS" in message
    assert "CARTMEM_KAFKA_SSL_CAFILE" in message  # the likely cause, named
