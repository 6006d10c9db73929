"""Prometheus metrics of an ingest worker, on a registry of its own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


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
        self.live_sessions = Gauge(
            "cartmem_ingest_live_sessions", "Sessions held on the device", registry=r
        )
        self.device_bytes = Gauge(
            "cartmem_ingest_device_memory_bytes", "Device memory in use", registry=r
        )
        self._window_start = time.monotonic()
        self._window_frames = 0.0

    def count_frames(self, n: int) -> None:
        self.frames.inc(n)
        self._window_frames += n

    def roll_rate(self) -> None:
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed > 0:
            self.frames_per_second.set(self._window_frames / elapsed)
        self._window_start, self._window_frames = now, 0.0

    def serve(self, port: int) -> None:
        start_http_server(port, addr="0.0.0.0", registry=self.registry)
