"""Every operator of docs/ARITHMETIC.md with its two implementations, selectable by name.

Each operator lives in ``int4rt/ops/<op>/``: ``reference.py`` is the readable NumPy form of
its ARITHMETIC.md section(s) and ``numba.py`` the kernel; both define the names in
``Op.exports`` with the same signatures and must return the same integers. ``Backend``,
``int4rt selftest`` and the twin test (``tests/test_ops_registry.py``) iterate :data:`OPS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import import_module
from types import ModuleType

from int4rt.errors import Int4rtError
from int4rt.options import BACKENDS, BackendName

# The file of ``int4rt/ops/<op>/`` that implements each backend.
IMPLEMENTATION_FILES: dict[BackendName, str] = {"numpy": "reference", "numba": "numba"}


@dataclass(frozen=True)
class Op:
    """One operator: its folder under ``int4rt/ops``, its ARITHMETIC.md sections, its API."""

    name: str
    sections: str
    exports: tuple[str, ...]

    def module(self, backend: BackendName) -> ModuleType:
        """The module implementing this operator on ``backend``."""
        return import_module(f"int4rt.ops.{self.name}.{IMPLEMENTATION_FILES[backend]}")


OPS: tuple[Op, ...] = (
    Op("requantize", "§3, §4", ("requantize",)),
    Op("int4", "§5", ("pack_int4", "unpack_int4")),
    Op("activations", "§6", ("sigmoid16", "tanh16")),
    Op("gemv", "§7", ("fully_connected", "fully_connected_int4", "linear")),
    Op("lstm", "§8", ("lstm_step", "lstm_sequence")),
    Op("joint", "§9", ("project_encoder", "project_predictor", "joint_logits")),
    Op("log_softmax", "§10", ("log_softmax",)),
)


@dataclass(frozen=True)
class Backend:
    """The operator modules of one implementation, one attribute per entry of :data:`OPS`."""

    name: BackendName
    requantize: ModuleType
    int4: ModuleType
    activations: ModuleType
    gemv: ModuleType
    lstm: ModuleType
    joint: ModuleType
    log_softmax: ModuleType


def check_backend(name: str) -> BackendName:
    """``name`` if it names a backend; an :class:`Int4rtError` otherwise."""
    if name not in BACKENDS:
        raise Int4rtError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    return name  # type: ignore[return-value]


def get_backend(name: str) -> Backend:
    """Backend ``name``: ``"numba"`` (kernels) or ``"numpy"`` (the readable reference)."""
    backend = check_backend(name)
    return Backend(backend, **{op.name: op.module(backend) for op in OPS})


def backend_fields() -> tuple[str, ...]:
    """The operator attributes of :class:`Backend` (everything but ``name``)."""
    return tuple(f.name for f in fields(Backend) if f.name != "name")
