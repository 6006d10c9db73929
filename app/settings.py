"""One typed settings object, read once from ``CARTMEM_*`` environment variables.

Nothing here connects to a server: values are parsed and checked, never used. Every
setting has an embedded default so that ``cartmem demo`` runs with nothing set.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

from app.errors import SettingsError

ENV_PREFIX = "CARTMEM_"
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEVICES = ("auto", "cpu", "cuda")
BACKBONE_AUTOCAST = ("auto", "off", "bf16", "fp16")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Variables that may instead name a file holding the value (Docker and Kubernetes secrets):
#: ``CARTMEM_DATABASE_URL_FILE=/run/secrets/db_url``; the file's trailing newline is dropped.
FILE_SUFFIX = "_FILE"
#: a database URL's query parameters that carry a password (libpq reads them too)
URL_SECRET_PARAMS = ("password", "sslpassword")
#: Old variable names still read for one release, with a warning: field -> old name.
#: ``CARTMEM_CHECKPOINT_INTERVAL_S`` became ``CARTMEM_COMMIT_INTERVAL_S`` when "checkpoint"
#: came to mean model weights only.
DEPRECATED_ENV = {"commit_interval_s": "CARTMEM_CHECKPOINT_INTERVAL_S"}


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/cartmem``, else ``~/.local/share/cartmem``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cartmem"


@dataclass(frozen=True)
class Settings:
    """Everything a cartmem process needs to know about where it runs.

    Fields map to ``CARTMEM_<FIELD NAME IN UPPER CASE>``. Secrets (``metadata["secret"]``)
    are left out of ``repr``, masked by ``redacted`` and may also be read from a file named
    by ``CARTMEM_<NAME>_FILE``.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    # empty: a SQLite file under data_dir; out of repr, since it may hold a password
    database_url: str = field(default="", repr=False, metadata={"secret": "url"})
    kafka_bootstrap_servers: str = ""  # empty: the in-process file source, no Kafka
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False, metadata={"secret": "value"})
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_session_timeout_ms: int = 10_000  # how soon the group notices a dead worker
    topic: str = "cartmem.video"
    group: str = "cartmem-ingest"
    device: str = "auto"
    checkpoint_path: str = ""  # empty: the checkpoint shipped with the package
    memory_fps: float = 0.0  # 0: the checkpoint's own frames per second
    max_message_bytes: int = 1_048_576
    max_frame_pixels: int = 3840 * 2160
    max_chunk_seconds: float = 30.0
    max_live_sessions: int = 1024
    # how far past the session's video so far a chunk may start (a lost chunk, a camera
    # that dropped out); later chunks are dead letters instead of a frozen-frame gap
    max_time_gap_s: float = 60.0
    # how far apart (session time) a session's cameras may drift before the one behind is
    # no longer waited for: its slot holds its last frame, its late video is a recorded loss
    camera_skew_s: float = 30.0
    # an open session that got no message for this long is closed by its partition's owner
    session_idle_timeout_s: float = 1800.0
    commit_interval_s: float = 10.0
    # a session's memory is stored every this many clips (and when it ends); between, the
    # frames of its newer clips are stored instead and replayed after a restart, so commit
    # bytes follow the video, not the number of sessions times the memory's size
    memory_save_clips: int = 4
    ingest_batch_records: int = 64  # records fetched per poll; the decode queue holds 4x this
    # decoded video a worker holds ahead of the model (MiB): records wait, undecoded, past it
    ingest_read_ahead_mb: int = 32
    # clips (of all sessions) per backbone call, padded to that fixed shape so a session's
    # tokens never depend on its neighbours (0: 1 on CPU, where bigger calls are no faster,
    # 8 on CUDA); the precision the backbone runs in (auto: off on CPU, bf16 on CUDA)
    backbone_batch_clips: int = 0
    backbone_autocast: str = "auto"
    # evidence staff look at: JPEG thumbnails of the frames the memory saw, this many per
    # second (0: none; at most the memory's own rate), this wide; past either bound a
    # session's thumbnails are thinned evenly (every other one dropped) so that every
    # moment stays covered at a coarser rate
    evidence_fps: float = 1.0
    evidence_width: int = 160
    evidence_max_frames: int = 1200
    evidence_max_bytes_per_session: int = 4 * 1024 * 1024
    # where a cart camera's frames show the cart itself, as a share of the height from the
    # top: the band below it is kept per memory step (a few hundred bytes a step) for
    # reconciliation to see whether a move changed the cart (``app.video.cart_band``);
    # the synthetic store's camera mounting (1: keep none)
    cart_band_top: float = 0.72
    metrics_port: int = 0  # 0: no health and metrics server
    # where that server listens: loopback unless asked, since /metrics tells anyone who
    # reaches it about the store's traffic; containers set 0.0.0.0 (compose.yaml)
    metrics_host: str = "127.0.0.1"
    # a worker with work waiting that moved on not once in this long is not ready (/readyz)
    stall_s: float = 300.0
    log_format: str = "text"  # text for people, json (one object a line) for collectors
    log_level: str = "INFO"
    # queries per claim and model call: a trade of throughput for latency, not a peak (CPU,
    # session 16: 293 q/s at p50 55 ms; 64 gives 421 q/s at 162 ms; docs/BENCHMARKS.md)
    query_batch_size: int = 16
    query_lease_s: float = 60.0  # a claim's lease; after it another worker may take the query
    query_max_attempts: int = 3
    query_retry_s: float = 2.0  # first retry delay; doubles each attempt
    query_poll_s: float = 1.0  # longest wait between looks at the queue
    answer_cache_sessions: int = 256  # memories the query worker keeps on the device
    # how reconciliation reads a product's put / take-out events: activity questions over
    # overlapping windows, one whole-session question answered per memory step, or those
    # answers of every product read as one trip with the cart band and the scans (held-out
    # trips: 0.9 false flags a trip against 16 for steps; docs/RESULTS.md)
    reconcile_evidence: str = "cart"
    # a discrepancy becomes a flag only from this confidence on (the probability, under the
    # model's answers, that the cart holds more or fewer items than were scanned); chosen
    # on validation stores' sessions for the shipped model (docs/RESULTS.md)
    reconcile_min_confidence: float = 0.0
    # a trip's flag confidence from its margin, "intercept,slope" in nats, as `cartmem
    # reviews calibrate` fits it on the staff's verdicts (empty: the calibration fitted on
    # validation trips, app.reconcile.flag_confidence)
    reconcile_flag_calibration: str = ""
    # rows of the video that publishing re-encodes (codecs other than H.264, a rotated
    # video, a key-frame interval too big for a message): the memory reads at most 448
    publish_max_height: int = 480
    # the till is told of each stored reconciliation by an HTTP POST here (empty: no
    # webhook; PostgreSQL's NOTIFY is always sent), signed with the secret (required then)
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False, metadata={"secret": "value"})
    webhook_timeout_s: float = 5.0
    webhook_retry_s: float = 2.0  # first retry delay; doubles each attempt, up to 10 minutes
    # shopper data (docs/PRIVACY.md): days each kind is kept after its session ended (0: not
    # past the end), applied by `cartmem purge` and by the workers every purge_interval_s
    retention_memories_days: float = 7.0
    retention_evidence_days: float = 30.0
    retention_answers_days: float = 30.0
    retention_reconciliations_days: float = 365.0
    retention_sessions_days: float = 365.0  # the session row and anything still left of it
    retention_dead_letters_days: float = 30.0  # after the dead letter was written
    purge_interval_s: float = 3600.0  # 0: the workers never purge on their own

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite:///{Path(self.data_dir) / 'cartmem.db'}"
            object.__setattr__(self, "database_url", url)
        object.__setattr__(self, "database_url", _normalized_database_url(self.database_url))
        _check_choice(
            "kafka_security_protocol", self.kafka_security_protocol, KAFKA_SECURITY_PROTOCOLS
        )
        if self.kafka_sasl_mechanism == "OAUTHBEARER":
            # kafka-python connects with OAUTHBEARER only through a token provider object,
            # which no environment variable can give: refuse now, not at every reconnect
            raise SettingsError(
                f"{env_name('kafka_sasl_mechanism')}=OAUTHBEARER is not supported: "
                "kafka-python needs a token provider cartmem does not have; use SCRAM-SHA-512 "
                "(or PLAIN) over SASL_SSL."
            )
        if self.kafka_sasl_mechanism:
            _check_choice("kafka_sasl_mechanism", self.kafka_sasl_mechanism, KAFKA_SASL_MECHANISMS)
        if self.kafka_security_protocol.startswith("SASL") and not self.kafka_sasl_mechanism:
            raise SettingsError(
                f"{env_name('kafka_sasl_mechanism')} must be set when "
                f"{env_name('kafka_security_protocol')} is {self.kafka_security_protocol}."
            )
        _check_choice("device", self.device, DEVICES)
        _check_choice("log_format", self.log_format, LOG_FORMATS)
        object.__setattr__(self, "log_level", self.log_level.upper())
        _check_choice("log_level", self.log_level, LOG_LEVELS)
        _check_choice("backbone_autocast", self.backbone_autocast, BACKBONE_AUTOCAST)
        _check_choice("reconcile_evidence", self.reconcile_evidence, ("windows", "steps", "cart"))
        for name in (
            "max_message_bytes",
            "max_frame_pixels",
            "max_live_sessions",
            "kafka_session_timeout_ms",
            "ingest_batch_records",
            "ingest_read_ahead_mb",
            "memory_save_clips",
            "query_batch_size",
            "query_max_attempts",
            "answer_cache_sessions",
            "evidence_width",
            "evidence_max_frames",
            "evidence_max_bytes_per_session",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be a positive integer.")
        for name in (
            "max_chunk_seconds",
            "max_time_gap_s",
            "camera_skew_s",
            "session_idle_timeout_s",
            "commit_interval_s",
            "query_lease_s",
            "query_retry_s",
            "query_poll_s",
            "webhook_timeout_s",
            "webhook_retry_s",
            "stall_s",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be a positive number of seconds.")
        if self.memory_fps < 0:
            raise SettingsError(
                f"{env_name('memory_fps')} must be 0 (the checkpoint's) or positive."
            )
        if self.backbone_batch_clips < 0:
            raise SettingsError(
                f"{env_name('backbone_batch_clips')} must be 0 (by device) or a positive integer."
            )
        if self.evidence_fps < 0:
            raise SettingsError(
                f"{env_name('evidence_fps')} must be 0 (no thumbnails) or positive."
            )
        if not 0.0 < self.cart_band_top <= 1.0:
            raise SettingsError(
                f"{env_name('cart_band_top')} must be in (0, 1]: a share of the frame's height "
                "(1 keeps no cart band)."
            )
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"{env_name('metrics_port')} must be a TCP port (0 turns it off).")
        if not self.metrics_host:
            raise SettingsError(
                f"{env_name('metrics_host')} must name an address to listen on (e.g. 127.0.0.1)."
            )
        if not 0.0 <= self.reconcile_min_confidence <= 1.0:
            raise SettingsError(f"{env_name('reconcile_min_confidence')} must be in [0, 1].")
        self.flag_calibration  # noqa: B018 (parsed here so that a bad value stops the start)
        for name in (
            "retention_memories_days",
            "retention_evidence_days",
            "retention_answers_days",
            "retention_reconciliations_days",
            "retention_sessions_days",
            "retention_dead_letters_days",
            "purge_interval_s",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{env_name(name)} must be 0 or more.")
        if self.webhook_url:
            if not self.webhook_url.startswith(("http://", "https://")):
                raise SettingsError(
                    f"{env_name('webhook_url')} must be an http:// or https:// URL."
                )
            if not self.webhook_secret:
                raise SettingsError(
                    f"{env_name('webhook_secret')} must be set when {env_name('webhook_url')} "
                    "is: the till checks each POST's signature with it."
                )
        if self.publish_max_height < 2:
            raise SettingsError(f"{env_name('publish_max_height')} must be at least 2 (rows).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); unknown variables are ignored.

        A secret is read from the file ``CARTMEM_<NAME>_FILE`` names, when that is set.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(env_name(f.name))
            if f.metadata.get("secret"):
                raw = _secret_from_file(env_name(f.name), raw, environ)
            old = DEPRECATED_ENV.get(f.name)
            if not raw and old and environ.get(old):
                warnings.warn(
                    f"{old} is deprecated and will be removed; set {env_name(f.name)} instead.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                raw = environ[old]
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw.strip())
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as ``CARTMEM_*`` variables (secrets included: for child processes)."""
        return {env_name(f.name): str(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def flag_calibration(self) -> tuple[float, float] | None:
        """(intercept, slope) of ``reconcile_flag_calibration``, None where it is empty."""
        text = self.reconcile_flag_calibration.strip()
        if not text:
            return None
        parts = text.split(",")
        try:
            intercept, slope = (float(p) for p in parts)
        except ValueError:
            intercept = slope = math.nan
        if len(parts) != 2 or not (math.isfinite(intercept) and math.isfinite(slope)):
            raise SettingsError(
                f"{env_name('reconcile_flag_calibration')} must be two numbers, "
                f"'intercept,slope' (as `cartmem reviews calibrate` prints them), not {text!r}."
            )
        if slope < 0:
            raise SettingsError(
                f"{env_name('reconcile_flag_calibration')}: the slope must be 0 or more (a "
                "wider margin never makes a flag less likely)."
            )
        return intercept, slope

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    @property
    def database_backend(self) -> str:
        return sa.make_url(self.database_url).get_backend_name()

    def redacted(self) -> dict[str, str]:
        """Every setting as text for people to read; secrets and URL passwords are masked."""
        shown: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            secret = f.metadata.get("secret")
            if secret == "url":
                value = shown_database_url(value)
            elif secret and value:
                value = "***"
            shown[env_name(f.name)] = str(value)
        return shown

    def secret_values(self) -> list[str]:
        """The secrets themselves (passwords, the webhook's key), longest first, so that
        text about to be shown can have them masked (``mask_secrets``)."""
        values = []
        for f in dataclasses.fields(self):
            secret = f.metadata.get("secret")
            if secret == "url":
                parsed = sa.make_url(getattr(self, f.name))
                values.append(parsed.password or "")
                for key, value in parsed.query.items():
                    if key.lower() in URL_SECRET_PARAMS:
                        values += [value] if isinstance(value, str) else list(value)
            elif secret:
                values.append(getattr(self, f.name))
        return sorted({str(v) for v in values if v}, key=len, reverse=True)


def mask_secrets(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every occurrence of each of ``secrets`` replaced by ``***``.

    Secrets under 4 characters are left alone: masking them would garble every line
    (and they guard nothing anyway).
    """
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def shown_database_url(url: str) -> str:
    """``url`` for people to read: its password, and any password among its query
    parameters (``?password=``, ``?sslpassword=``), masked."""
    parsed = sa.make_url(url)
    hidden = {k: "***" for k in parsed.query if k.lower() in URL_SECRET_PARAMS}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    # rendering percent-encodes the query's *** as it would any value
    return parsed.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _secret_from_file(name: str, raw: str | None, environ: Mapping[str, str]) -> str | None:
    """The secret ``name`` from the file ``name_FILE`` names, else ``raw``; never both."""
    path = environ.get(name + FILE_SUFFIX)
    if not path:
        return raw
    if raw:
        raise SettingsError(f"set {name} or {name}{FILE_SUFFIX}, not both.")
    try:
        value = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SettingsError(
            f"{name}{FILE_SUFFIX} names {path}, which cannot be read ({reason})."
        ) from None
    value = value.rstrip("\r\n")
    if not value.strip():
        raise SettingsError(f"{name}{FILE_SUFFIX} names {path}, which is empty.")
    return value


def _parse(name: str, type_name: Any, raw: str) -> Any:
    type_name = str(type_name)
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        kind = "an integer" if type_name == "int" else "a number"
        raise SettingsError(f"{env_name(name)} must be {kind}, not {raw!r}.") from None
    if type_name == "Path":
        return Path(raw).expanduser()
    return raw


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{env_name(name)} must be one of {', '.join(choices)}, not {value!r}.")


def _normalized_database_url(url: str) -> str:
    """The URL checked, with a bare ``postgresql://`` bound to psycopg2 (our dependency)."""
    if url.startswith("postgres://"):  # the spelling some hosting platforms hand out
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise SettingsError(
            f"{env_name('database_url')} is not a database URL "
            "(expected e.g. postgresql+psycopg2://user:password@host:5432/cartmem)."
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise SettingsError(
            f"{env_name('database_url')} must point at PostgreSQL or SQLite, "
            f"not {parsed.get_backend_name()!r}."
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)
