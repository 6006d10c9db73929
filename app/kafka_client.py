"""Kafka producers and consumers configured from settings, with readable connection errors."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaConnectionError, KafkaTimeoutError

from app.errors import BrokerUnavailableError, SettingsError
from app.settings import Settings, env_name


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by producers and consumers."""
    if not settings.uses_kafka:
        raise SettingsError(
            f"{env_name('kafka_bootstrap_servers')} is not set; point it at a broker "
            "(`cartmem dev up` starts a local one)."
        )
    options: dict[str, Any] = {
        "bootstrap_servers": [
            s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()
        ],
        "security_protocol": settings.kafka_security_protocol,
        "client_id": "cartmem",
    }
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    for name in ("cafile", "certfile", "keyfile"):
        value = getattr(settings, f"kafka_ssl_{name}")
        if value:
            options[f"ssl_{name}"] = value
    return options


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An idempotent producer (acks=all) that allows messages up to the configured limit."""
    options = client_options(settings) | {
        "acks": "all",
        "enable_idempotence": True,
        "max_request_size": settings.max_message_bytes + 64 * 1024,
    }
    return _connect(settings, KafkaProducer, options | overrides)


def make_consumer(settings: Settings, *topics: str, **overrides: Any) -> KafkaConsumer:
    """A consumer that never commits by itself: cartmem's offsets live in the database."""
    options = client_options(settings) | {
        "group_id": settings.group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": settings.max_message_bytes + 64 * 1024,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": max(500, settings.kafka_session_timeout_ms // 4),
    }
    return _connect(settings, KafkaConsumer, options | overrides, *topics)


def _connect(settings: Settings, factory: type, options: dict[str, Any], *args: Any) -> Any:
    try:
        return factory(*args, **options)
    except (KafkaTimeoutError, KafkaConnectionError):  # 3.0 raises "Unable to bootstrap"
        tls = ""
        if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
            # a broker whose certificate the CA file does not vouch for looks the same here
            tls = (
                f", and that {env_name('kafka_ssl_cafile')} holds the CA that signed the "
                "broker's certificate"
            )
        raise BrokerUnavailableError(
            f"no Kafka broker answered at {settings.kafka_bootstrap_servers}; check "
            f"{env_name('kafka_bootstrap_servers')} and that the broker is running{tls}."
        ) from None
