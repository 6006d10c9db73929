"""Whether weights changed since they were last read, without reading their values.

A cache of what weights computed (a catalog image's tokens, the decoder's first
self-attention over a window) must forget it when they change. ``state`` changes when any
of the tensors is written in place (``Tensor._version``: ``load_state_dict``, an optimizer
step), moves to another device, or when any module anywhere registers a parameter, buffer
or submodule (torch's global registration hooks count them): a replaced weight is a new
tensor, and the id of the one it replaced may be given to it, so ids alone do not tell.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

_registrations = 0  # parameters, buffers and submodules registered by any module so far


def _count_registration(*_args: object) -> None:
    global _registrations
    _registrations += 1


for _register in (
    torch.nn.modules.module.register_module_parameter_registration_hook,
    torch.nn.modules.module.register_module_buffer_registration_hook,
    torch.nn.modules.module.register_module_module_registration_hook,
):
    _register(_count_registration)


def registrations() -> int:
    """Parameters, buffers and submodules registered by any module in this process so far."""
    return _registrations


def state(tensors: Iterable[Tensor]) -> tuple[object, ...]:
    """Changes whenever one of ``tensors`` is written in place or moved, or a module
    registers a parameter, buffer or submodule."""
    return (_registrations, *((id(t), t._version, t.device) for t in tensors))
