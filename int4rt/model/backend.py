"""The two implementations of every operator, selectable by name."""

from __future__ import annotations

from types import ModuleType

from int4rt.errors import Int4rtError

BACKENDS = ("numba", "numpy")


def lstm_backend(name: str) -> ModuleType:
    """The LSTM operators of backend ``name``: Numba kernels or the NumPy reference."""
    if name == "numba":
        from int4rt.kernels import lstm
    elif name == "numpy":
        from int4rt.ref import lstm
    else:
        raise Int4rtError(f"unknown backend {name!r}; expected 'numba' or 'numpy'")
    return lstm
