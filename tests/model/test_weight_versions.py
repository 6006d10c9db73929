"""Caches of what weights computed see every change: in place, replaced, or registered."""

from __future__ import annotations

import torch
from torch import nn

from model import weight_versions


def test_the_state_changes_with_an_in_place_write_and_a_replaced_weight() -> None:
    layer = nn.Linear(4, 3)
    before = weight_versions.state(layer.parameters())
    assert weight_versions.state(layer.parameters()) == before  # reading changes nothing
    with torch.no_grad():
        layer.weight.mul_(2.0)
    written = weight_versions.state(layer.parameters())
    assert written != before
    layer.weight = nn.Parameter(torch.zeros(3, 4))  # a new tensor, version 0 again
    replaced = weight_versions.state(layer.parameters())
    assert replaced != written
    assert replaced[0] > written[0]  # counted, whatever id the new tensor got


def test_any_module_registering_a_submodule_or_buffer_is_counted() -> None:
    start = weight_versions.registrations()
    holder = nn.Module()
    holder.child = nn.Identity()
    holder.register_buffer("scale", torch.ones(1))
    assert weight_versions.registrations() >= start + 2
