"""A SQLite database with every table, one per test (the embedded default)."""

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

import storage


@pytest.fixture
def db(tmp_path) -> Iterator[Session]:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'nested' / 'x.db'}")
    storage.Base.metadata.create_all(engine)
    with storage.session_factory(engine)() as session:
        yield session
    engine.dispose()
