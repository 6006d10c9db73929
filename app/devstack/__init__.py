"""Real local servers for tests and development: a Kafka broker and PostgreSQL on 127.0.0.1.

Nothing here is imported by the service itself; tests and `cartmem dev` use it.
"""

from app.devstack.kafka import KAFKA_VERSION, KafkaBroker, KafkaTls, ensure_kafka_libs
from app.devstack.postgres import PostgresServer
from app.devstack.stack import DevStack

__all__ = [
    "KAFKA_VERSION",
    "DevStack",
    "KafkaBroker",
    "KafkaTls",
    "PostgresServer",
    "ensure_kafka_libs",
]
