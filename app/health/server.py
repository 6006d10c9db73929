"""``/healthz``, ``/readyz`` and ``/metrics`` of a worker on one port.

The standard library's threaded HTTP server with one small handler, rather than
prometheus_client's ``start_http_server``: that one answers every path with the metrics,
and readiness needs a 503 from our own state. ``generate_latest`` still renders the
metrics, so their format is prometheus_client's. Each request gets a thread; nothing a
request does touches the worker's thread or the database (``app.health.prober`` did that).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.errors import SettingsError
from app.health.readiness import Readiness
from app.settings import env_name

log = logging.getLogger("cartmem.health")


class HealthServer:
    def __init__(
        self, host: str, port: int, readiness: Readiness, registry: CollectorRegistry
    ) -> None:
        """Binds now (port 0: any free port, see ``port``); serves from ``start``."""
        handler = type("Handler", (_Handler,), {"readiness": readiness, "registry": registry})
        try:
            self._http = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise SettingsError(
                f"cannot serve health and metrics on {host}:{port} ({exc.strerror or exc}); "
                f"set {env_name('metrics_port')} to a free port or "
                f"{env_name('metrics_host')} to an address of this machine."
            ) from None
        self._http.daemon_threads = True  # a hung scraper must not hold up the exit
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="cartmem-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        host = self._http.server_address[0]
        log.info(
            "health and metrics on http://%s:%d (/healthz, /readyz, /metrics)", host, self.port
        )
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join(timeout=5)
        self._http.server_close()


class _Handler(BaseHTTPRequestHandler):
    readiness: Readiness
    registry: CollectorRegistry

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":  # the process answers: that is all liveness means
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            state = self.readiness.state()
            body = json.dumps({"ready": state.ready, "problems": list(state.problems)})
            self._send(200 if state.ready else 503, body.encode() + b"\n", "application/json")
        elif path == "/metrics":
            self._send(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b"not found: try /healthz, /readyz or /metrics\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not news; the access log would drown the rest
