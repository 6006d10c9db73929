"""Prometheus metrics of an ingest worker, on a registry of its own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.ingest.records import TopicPartition

#: seconds one commit of the ingest state takes; the interval is 10 s by default
_COMMIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: bytes of session state one commit writes: from nothing changed to many whole memories
_BYTES_BUCKETS = tuple(float(4**k * 1024) for k in range(11))  # 1 KiB .. 1 GiB


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "cartmem_ingest_messages", "Records handled", ["result"], registry=r
        )
        self.frames = Counter("cartmem_ingest_decoded_frames", "Video frames decoded", registry=r)
        self.samples = Counter(
            "cartmem_ingest_memory_frames",
            "Frames at the memory FPS written into memories",
            registry=r,
        )
        self.clips = Counter("cartmem_ingest_clips", "Clips written by the sampler", registry=r)
        self.dead_letters = Counter(
            "cartmem_ingest_dead_letters", "Records set aside as dead letters", registry=r
        )
        self.commits = Counter(
            "cartmem_ingest_commits", "Commits of the ingest state", ["result"], registry=r
        )
        self.frames_per_second = Gauge(
            "cartmem_ingest_frames_per_second",
            "Decoded frames per second since the last commit",
            registry=r,
        )
        self.lag = Gauge(
            "cartmem_ingest_consumer_lag", "Records behind the end of owned partitions", registry=r
        )
        self.partition_lag = Gauge(
            "cartmem_ingest_partition_lag",
            "Records behind the end of one owned partition, as of the latest commit",
            ["topic", "partition"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            "cartmem_ingest_commit_seconds",
            "Time one commit of the ingest state took (the database transaction)",
            buckets=_COMMIT_BUCKETS,
            registry=r,
        )
        self.commit_bytes = Histogram(
            "cartmem_ingest_commit_bytes",
            "Bytes of session state (memories, pending frames, thumbnails) one commit wrote",
            buckets=_BYTES_BUCKETS,
            registry=r,
        )
        self.live_sessions = Gauge(
            "cartmem_ingest_live_sessions", "Sessions held on the device", registry=r
        )
        self.device_bytes = Gauge(
            "cartmem_ingest_device_memory_bytes", "Device memory in use", registry=r
        )
        self._window_start = time.monotonic()
        self._window_frames = 0.0
        self._lag_labels: set[tuple[str, str]] = set()
        self.last_lag = 0  # records behind, all partitions, as of the latest commit

    def count_frames(self, n: int) -> None:
        self.frames.inc(n)
        self._window_frames += n

    def roll_rate(self) -> None:
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed > 0:
            self.frames_per_second.set(self._window_frames / elapsed)
        self._window_start, self._window_frames = now, 0.0

    def set_lags(self, lags: dict[TopicPartition, int]) -> None:
        """Lag of every owned partition; partitions no longer owned leave the metrics."""
        labels = {(topic, str(partition)) for topic, partition in lags}
        for gone in self._lag_labels - labels:
            self.partition_lag.remove(*gone)
        for (topic, partition), lag in lags.items():
            self.partition_lag.labels(topic, str(partition)).set(lag)
        self._lag_labels = labels
        self.last_lag = sum(lags.values())
        self.lag.set(self.last_lag)
