"""Golden set of requantization (ARITHMETIC.md §4, docs/VERIFICATION.md §2): every shift,
edge multipliers and accumulators, exact ties, in double and single rounding. The §4.3 steps
(wrap32, SRDHM) are stored as intermediates and checked on both paths (the Numba path through
its scalar kernels).
"""

from __future__ import annotations

import numpy as np

from int4rt import arith
from int4rt.golden.store import Computed, GoldenSet, Tensor
from int4rt.ops.formats import INT32_MAX, INT32_MIN
from int4rt.ops.requantize import numba as requantize_numba
from int4rt.ops.requantize import scalar
from int4rt.ops.requantize.reference import rounding_divide_by_pot, srdhm, wrap_int32

SEED = 20_250_601

REQUANT_MULTIPLIERS = (1 << 30, INT32_MAX, INT32_MIN, 3 << 29, 1690499128)
REQUANT_ACCS = (INT32_MIN, INT32_MIN + 1, -(1 << 30), -6, -5, -3, -1, 0, 1, 3, 5, 6, 1 << 30,
                INT32_MAX)


def _requantize_cases() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every shift × edge multipliers × edge accumulators and exact ties, then random cases."""
    rows = []
    for shift in range(-31, 31):
        ties = [(2 * k + 1) << -shift for k in (-2, -1, 0, 1)] if shift < 0 else []
        accs = sorted({*REQUANT_ACCS, *(t for t in ties if INT32_MIN <= t <= INT32_MAX)})
        rows += [(acc, m, shift) for m in REQUANT_MULTIPLIERS for acc in accs]
    rng = np.random.default_rng(SEED)
    wide = np.stack([rng.integers(INT32_MIN, INT32_MAX, 1000, endpoint=True),
                     rng.integers(1 << 30, 1 << 31, 1000), rng.integers(-31, 31, 1000)], 1)
    small = np.stack([rng.integers(-64, 65, 500), rng.integers(1 << 30, 1 << 31, 500),
                      rng.integers(-8, 0, 500)], 1)  # values a first rounding pushes onto a tie
    table = np.concatenate([np.array(rows, dtype=np.int64), wide, small])
    return table[:, 0], table[:, 1], table[:, 2]


def _double_steps(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, h, y) of §4.3: wrap32(acc << left), SRDHM(x, M), RDBPOT(h, right)."""
    x = wrap_int32(acc << np.maximum(shift, 0))
    h = srdhm(x, mult)
    return x, h, rounding_divide_by_pot(h, np.maximum(-shift, 0))


def build_requantize() -> GoldenSet:
    """``requantize`` in both modes: every shift, ties, INT32_MIN, saturation, wrap (§4)."""
    acc, mult, shift = _requantize_cases()
    x, h, y = _double_steps(acc, mult, shift)
    single = arith.requantize(acc, mult, shift, "single")
    assert np.array_equal(y, arith.requantize(acc, mult, shift, "double"))
    axes = ("case",)
    return GoldenSet(
        "arith_requantize", "requantize",
        "requantize(acc, M, s) in double (§4.3) and single (§4.4) rounding: every shift in "
        "[-31, 30] with edge multipliers and accumulators (INT32_MIN, exact ties), plus random "
        "cases; row i of every tensor is one case",
        {"spec": "ARITHMETIC.md §4", "cases": int(acc.size)},
        [Tensor("acc", "input", acc.astype(np.int32), axes),
         Tensor("multiplier", "input", mult.astype(np.int32), axes),
         Tensor("shift", "input", shift.astype(np.int8), axes),
         Tensor("double.x", "intermediate", x.astype(np.int32), axes,
                "wrap32(acc << max(s, 0)) (§4.3)"),
         Tensor("double.h", "intermediate", h.astype(np.int32), axes, "SRDHM(x, M) (§4.1)"),
         Tensor("double.y", "output", y.astype(np.int32), axes,
                "RDBPOT(h, max(-s, 0)) (§4.2): the double-rounding result"),
         Tensor("single.y", "output", single.astype(np.int64), axes,
                "(acc·M + 2^(30-s)) >> (31-s) (§4.4); may exceed int32")])


def replay_requantize(gset: GoldenSet, backend: str) -> list[Computed]:
    """Recompute ``arith_requantize`` with one backend."""
    acc, mult, shift = (gset[n].astype(np.int64) for n in ("acc", "multiplier", "shift"))
    if backend == "numpy":
        x, h, y = _double_steps(acc, mult, shift)
        via = "int4rt.ops.requantize.reference (wrap_int32, srdhm, rounding_divide_by_pot)"
        return [Computed("double.x", x, via), Computed("double.h", h, via),
                Computed("double.y", y, via),
                Computed("double.y", arith.requantize(acc, mult, shift, "double"),
                         "int4rt.arith.requantize"),
                Computed("single.y", arith.requantize(acc, mult, shift, "single"),
                         "int4rt.arith.requantize")]
    x = np.array([scalar.wrap_int32(a << max(s, 0)) for a, s in
                  zip(acc.tolist(), shift.tolist(), strict=True)], dtype=np.int64)
    h = np.array([scalar.srdhm(a, m) for a, m in zip(x.tolist(), mult.tolist(), strict=True)],
                 dtype=np.int64)
    via = "int4rt.ops.requantize.scalar (wrap_int32, srdhm)"
    return [Computed("double.x", x, via), Computed("double.h", h, via)] + [
        Computed(f"{mode}.y", requantize_numba.requantize(acc, mult, shift, mode),
                 "int4rt.ops.requantize.numba.requantize") for mode in arith.ROUNDING_MODES]
