"""Arithmetic profiles: named bundles of rounding, tables and bit widths (ARITHMETIC.md §11)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.ops.activations.tables import TFLM_SIGMOID_TABLE, sigmoid_table
from int4rt.options import PROFILES, ProfileName


@dataclass(frozen=True)
class Profile:
    """What a profile fixes: rounding modes allowed, the sigmoid table, operand widths, and
    whether activations must be signed (tflite-micro's int8 kernels take signed codes only).
    """

    name: ProfileName
    roundings: tuple[str, ...]
    weight_bits: tuple[int, ...]
    activation_bits: tuple[int, ...]
    table: np.ndarray
    signed_activations_only: bool


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (``"tflm"`` or ``"int4rt"``), ARITHMETIC.md §11."""
    if name == "tflm":
        return Profile("tflm", ("double",), (8,), (8,), TFLM_SIGMOID_TABLE, True)
    if name == "int4rt":
        return Profile("int4rt", ("double", "single"), (4, 8), (4, 8), sigmoid_table(), False)
    raise ArithmeticSpecError(
        f"unknown profile {name!r}; expected one of {', '.join(map(repr, PROFILES))}")
