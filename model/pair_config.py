"""A model pair's checkpoint: a ``config.json`` that names its member checkpoints.

``{"format": "cartmem.pair", "format_version": 2, "name": ..., "lead": "../tiny",
"partners": ["../tiny-early", "../tiny-b160"]}``, the paths relative to the directory
(version 1 names one ``"partner"``). Nothing else is stored: the weights are the members'
safetensors. Reading it needs no network, so ``model.checkpoint`` can name a pair's
members when it is given one, and ``model.pair`` loads them (the module's docstring says
what a pair is).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model.errors import CheckpointError

PAIR_FORMAT = "cartmem.pair"
PAIR_FORMAT_VERSION = 2
#: the versions this code reads: 1 names one ``partner``, 2 a list of ``partners``
READABLE_PAIR_VERSIONS = (1, 2)


def is_pair_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory``'s config.json is a pair's (it names member checkpoints)."""
    path = Path(directory) / "config.json"
    try:
        return json.loads(path.read_text()).get("format") == PAIR_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def pair_members(directory: str | Path) -> tuple[str, Path, tuple[Path, ...]]:
    """The pair's name, its lead's checkpoint directory and its partners'; a
    ``CheckpointError`` that says what is wrong with the config."""
    directory = Path(directory)
    path = directory / "config.json"
    try:
        raw: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != PAIR_FORMAT:
        raise CheckpointError(f"{path} is not a model pair's config (format {PAIR_FORMAT!r}).")
    version = raw.get("format_version")
    if version not in READABLE_PAIR_VERSIONS:
        raise CheckpointError(
            f"{path} has pair format version {version!r}; this code reads "
            f"{', '.join(map(str, READABLE_PAIR_VERSIONS))}."
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{path} needs a non-empty 'name'.")
    lead = _member(directory, path, "lead", raw.get("lead"))
    if version == 1:
        partners = [_member(directory, path, "partner", raw.get("partner"))]
    else:
        listed = raw.get("partners")
        if not isinstance(listed, list) or not listed:
            raise CheckpointError(
                f"{path} needs 'partners': a list of checkpoint directories' paths."
            )
        partners = [_member(directory, path, f"partner {i + 1}", v) for i, v in enumerate(listed)]
    return name, lead, tuple(partners)


def _member(directory: Path, path: Path, role: str, value: object) -> Path:
    """The checkpoint directory a pair config names for ``role``, checked to be one."""
    if not isinstance(value, str) or not value:
        raise CheckpointError(f"{path} needs '{role}': the path of a checkpoint directory.")
    member = (directory / value).resolve()
    if not (member / "config.json").is_file() or not (member / "model.safetensors").is_file():
        raise CheckpointError(
            f"{path}: its {role} {value!r} ({member}) is not a checkpoint directory."
        )
    return member


def write_pair_checkpoint(
    directory: str | Path, name: str, lead: Path, partners: Sequence[Path]
) -> Path:
    """A pair checkpoint in ``directory`` naming ``lead`` and ``partners`` (stored relative
    to it, so they move together)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "format": PAIR_FORMAT,
        "format_version": PAIR_FORMAT_VERSION,
        "name": name,
        "lead": _relative(lead, directory),
        "partners": [_relative(partner, directory) for partner in partners],
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    pair_members(directory)  # refuses a pair that would not load
    return path


def _relative(member: Path, directory: Path) -> str:
    return os.path.relpath(Path(member).resolve(), directory.resolve())


def checkpoint_files(directory: str | Path) -> list[Path]:
    """Every file whose bytes decide a checkpoint's answers, in a fixed order: its config,
    and its weights or, for a pair, each member's config and weights."""
    directory = Path(directory)
    if not is_pair_checkpoint(directory):
        return [directory / "model.safetensors", directory / "config.json"]
    _name, lead, partners = pair_members(directory)
    return [
        directory / "config.json",
        *(member / f for member in (lead, *partners) for f in ("model.safetensors", "config.json")),
    ]


def listed_members(document: dict[str, Any]) -> list[object]:
    """The member paths a pair config's JSON names, unchecked, lead first (version 2's
    ``partners`` or version 1's ``partner``): what a refusal to load one as a single
    network names."""
    partners = document.get("partners")
    if not isinstance(partners, list):
        partners = [document.get("partner")]
    return [document.get("lead"), *partners]
