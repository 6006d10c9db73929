"""The small dataset these tests share, and one thread for their small tensors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from tests.model.data.stores import make_store_dataset


@pytest.fixture(scope="session")
def small_dataset(
    tmp_path_factory: pytest.TempPathFactory, make_small_dataset: Callable[..., Path]
) -> Path:
    """Read-only: one training video and one validation video (tests that write copy it)."""
    return make_small_dataset(tmp_path_factory.mktemp("dataset") / "ds", split=(0.5, 0.5, 0.0))


@pytest.fixture(scope="session")
def store_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only: three stores, two training ones and one validation one, a video each."""
    return make_store_dataset(tmp_path_factory.mktemp("stores") / "ds")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """These tensors are small: one thread beats two, and by far on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
