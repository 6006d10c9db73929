"""Streaming ingest: camera chunks from Kafka (or files) into each session's memory."""

from app.ingest.engine import IngestEngine, IngestStats
from app.ingest.metrics import IngestMetrics
from app.ingest.sources import FileSource, KafkaSource, Source

__all__ = ["FileSource", "IngestEngine", "IngestMetrics", "IngestStats", "KafkaSource", "Source"]
