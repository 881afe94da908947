"""The two implementations of every operator, selectable by name."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from int4rt.errors import Int4rtError

BACKENDS = ("numba", "numpy")


@dataclass(frozen=True)
class Backend:
    """The operator modules of one implementation: LSTM, joint and log-softmax."""

    name: str
    lstm: ModuleType
    joint: ModuleType
    log_softmax: ModuleType


def get_backend(name: str) -> Backend:
    """Backend ``name``: ``"numba"`` (kernels) or ``"numpy"`` (the readable reference)."""
    if name == "numba":
        from int4rt.kernels import joint, log_softmax, lstm
    elif name == "numpy":
        from int4rt.ref import joint, log_softmax, lstm
    else:
        raise Int4rtError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    return Backend(name, lstm, joint, log_softmax)
