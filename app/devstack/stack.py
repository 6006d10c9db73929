"""The pair of servers behind `cartmem dev up | down`, found again through a state file.

`dev up` and `dev down` are separate processes, so the servers run detached (own session,
output in log files under the state dir) and ``devstack.json`` records how to find them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from app.devstack._process import file_lock, progress
from app.devstack.kafka import KAFKA_VERSION, KafkaBroker
from app.devstack.postgres import PostgresServer
from app.errors import DevStackError

STATE_FILE = "devstack.json"
_NOT_RUNNING = "no local stack is running; start one with `cartmem dev up`"


@dataclass
class DevStack:
    """A local Kafka broker and PostgreSQL that outlive the process that started them."""

    state_dir: Path
    kafka: KafkaBroker
    postgres: PostgresServer

    @classmethod
    def up(cls, state_dir: Path, *, kafka_version: str = KAFKA_VERSION) -> Self:
        """Start both servers, or return the running pair recorded in ``state_dir``.

        A half-dead pair (one server crashed) is stopped and replaced by a fresh one.
        """
        state_dir = Path(state_dir).resolve()
        with file_lock(state_dir / "devstack.lock"):
            existing = cls._read(state_dir)
            if existing is not None:
                if existing.is_running():
                    progress(f"local stack already running (state in {existing.state_file})")
                    return existing
                progress("local stack found half-stopped; replacing it")
                existing.down()
            postgres = PostgresServer.start(state_dir / "postgres")
            try:
                kafka = KafkaBroker.start(state_dir / "kafka", version=kafka_version)
            except BaseException:
                postgres.stop()
                raise
            stack = cls(state_dir, kafka, postgres)
            stack._write()
            return stack

    @classmethod
    def load(cls, state_dir: Path) -> Self:
        """Re-attach to the servers a previous ``up`` started, from any process."""
        state_dir = Path(state_dir).resolve()
        stack = cls._read(state_dir)
        if stack is None:
            raise DevStackError(_NOT_RUNNING)
        if not (stack.kafka.is_running() or stack.postgres.is_running()):
            stack.state_file.unlink(missing_ok=True)  # stale: e.g. the machine rebooted
            raise DevStackError(_NOT_RUNNING)
        return stack

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    def env(self) -> dict[str, str]:
        """The settings that point cartmem at this stack."""
        return {
            "CARTMEM_DATABASE_URL": self.postgres.url,
            "CARTMEM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
        }

    def is_running(self) -> bool:
        return self.kafka.is_running() and self.postgres.is_running()

    def down(self, timeout: float = 20.0) -> None:
        """Stop both servers and delete their data, logs and the state file. Idempotent."""
        self.kafka.stop(timeout)
        self.postgres.stop(timeout)
        self.state_file.unlink(missing_ok=True)
        for workdir in (self.kafka.workdir, self.postgres.workdir):
            shutil.rmtree(workdir, ignore_errors=True)

    @classmethod
    def _read(cls, state_dir: Path) -> Self | None:
        try:
            state = json.loads((state_dir / STATE_FILE).read_text())
            return cls(
                state_dir,
                KafkaBroker.from_state(state["kafka"]),
                PostgresServer.from_state(state["postgres"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, DevStackError) as exc:
            raise DevStackError(
                f"{state_dir / STATE_FILE} is unreadable ({exc}); stop any leftover servers "
                "and delete that file"
            ) from exc

    def _write(self) -> None:
        state = {"kafka": self.kafka.to_state(), "postgres": self.postgres.to_state()}
        scratch = self.state_file.with_suffix(".tmp")
        scratch.write_text(json.dumps(state, indent=2))
        os.replace(scratch, self.state_file)  # a reader never sees half a file
