"""``python -m app.health.check [readyz|healthz]``: the container healthcheck (compose.yaml).

Asks this container's own worker, on the port and address the settings give it, and exits
0 when the answer is 200. A command of our own rather than curl, which the slim image lacks;
it reads the same ``CARTMEM_*`` variables, so compose.yaml names the port once.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from app.settings import Settings, env_name

_ANY_ADDRESS = ("0.0.0.0", "::")


def health_url(settings: Settings, path: str) -> str:
    host = settings.metrics_host
    if host in _ANY_ADDRESS:  # listening everywhere: ask over loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.metrics_port}/{path}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "readyz"
    if path not in ("readyz", "healthz"):
        print("usage: python -m app.health.check [readyz|healthz]", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    if not settings.metrics_port:
        print(f"{env_name('metrics_port')} is 0: the worker serves no health.", file=sys.stderr)
        return 1
    try:
        status, body = ask(health_url(settings, path))
    except OSError as exc:
        print(f"no answer from the worker: {exc}", file=sys.stderr)
        return 1
    print(body.strip(), file=sys.stdout if status == 200 else sys.stderr)  # 503 says why
    return 0 if status == 200 else 1


def ask(url: str, timeout_s: float = 5.0) -> tuple[int, str]:
    """Status and body of a GET, an error status included; OSError when nobody answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


if __name__ == "__main__":
    sys.exit(main())
