"""Golden sets of sigmoid16 and tanh16 (ARITHMETIC.md §6, docs/VERIFICATION.md §2): all
65536 int16 inputs with both tables, and every internal step (v, u, f, r) on edge inputs under
ten input scalings. The internal steps exist only in the NumPy reference; the outputs are
checked on both paths.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from int4rt import arith
from int4rt.golden.store import Computed, GoldenSet, Tensor
from int4rt.ops.activations.reference import interpolate, table_input
from int4rt.ops.registry import get_backend

SEED = 20_250_601
PROFILES = ("int4rt", "tflm")


def _table(profile: str) -> np.ndarray:
    return np.array(arith.get_profile(profile).table)


def build_activations() -> GoldenSet:
    """sigmoid16 and tanh16 on all 65536 int16 inputs, Q3.12 scaling, both tables (§6)."""
    x = np.arange(-32768, 32768, dtype=np.int16)
    tensors = [Tensor("x", "input", x, ("x",), "every int16 value in increasing order")]
    tensors += [Tensor(f"tables.{p}", "table", _table(p), ("k",), f"sigmoid table of profile {p}")
                for p in PROFILES]
    for fn in ("sigmoid16", "tanh16"):
        tensors += [Tensor(f"{fn}.{p}", "output", getattr(arith, fn)(x, _table(p)), ("x",),
                           f"{fn}(x) with the {p} table, (mult, shift) = (3, 0)")
                    for p in PROFILES]
    return GoldenSet(
        "arith_activations", "activations",
        "sigmoid16 (§6.3) and tanh16 (§6.4) of every int16 input with the Q3.12 scaling "
        "(multiplier 3, shift 0), with the int4rt table (§6.1) and TFLM's table (§6.2)",
        {"spec": "ARITHMETIC.md §6", "input_multiplier": 3, "input_shift": 0}, tensors)


def replay_activations(gset: GoldenSet, backend: str) -> list[Computed]:
    """Recompute ``arith_activations`` with one backend."""
    impl = get_backend(backend).activations
    via = impl.__name__
    return [Computed(f"{fn}.{p}", getattr(impl, fn)(gset["x"], gset[f"tables.{p}"]),
                     f"{via}.{fn}") for fn in ("sigmoid16", "tanh16") for p in PROFILES]


SCALINGS = ((3, 0), (6, 0), (12, 0), (3, 1), (3, 3), (49152, 0), (65535, 0), (1, 0),
            (32767, 1), (32767, 31))
EDGE_X = (-32768, -32767, -21761, -21760, -12288, -4096, -1000, -5, -3, -1, 0, 1, 3, 5, 1000,
          4096, 12288, 21759, 21760, 32767)
# (fraction bits of the index, r at saturation): §6.3 for sigmoid, §6.4 for tanh
FUNCTIONS = {"sigmoid": (9, 0x7FFF << 10), "tanh": (8, 0xFFFF << 8)}


def activation_steps(function: str, v: np.ndarray, table: np.ndarray) -> dict[str, np.ndarray]:
    """u, f, r (before the sign step), r after it, and out of §6.3/§6.4 for table inputs v."""
    frac_bits, saturated = FUNCTIONS[function]
    a = np.abs(v)
    r = interpolate(table, a, frac_bits, saturated)
    if function == "sigmoid":
        signed = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
        out = signed >> 10
    else:
        signed = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
        out = signed >> 8
    return {"u": a >> frac_bits, "f": a & ((1 << frac_bits) - 1), "r": r, "r_signed": signed,
            "out": out}


def _worked_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED + 1)
    xs = np.concatenate([EDGE_X, rng.integers(-32768, 32768, 12)])
    rows = np.array([(x, m, s) for m, s in SCALINGS for x in xs], dtype=np.int64)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def _by_scaling(mult: np.ndarray, shift: np.ndarray,
                fn: Callable[[np.ndarray, int, int], np.ndarray], size: int) -> np.ndarray:
    """``fn(rows, m, s)`` for each (m, s) group of rows, scattered back into one array."""
    out = np.zeros(size, dtype=np.int64)
    for m, s in sorted({(int(a), int(b)) for a, b in zip(mult, shift, strict=True)}):
        rows = np.flatnonzero((mult == m) & (shift == s))
        out[rows] = fn(rows, m, s)
    return out


def build_activations_worked() -> GoldenSet:
    """Every step of sigmoid16/tanh16 on edge inputs under ten input scalings (§6.3, §6.4)."""
    x, mult, shift = _worked_inputs()
    v = _by_scaling(mult, shift, lambda rows, m, s: table_input(x[rows], m, s), x.size)
    axes = ("case",)
    tensors = [Tensor("x", "input", x.astype(np.int16), axes),
               Tensor("multiplier", "input", mult.astype(np.int32), axes),
               Tensor("shift", "input", shift.astype(np.int8), axes)]
    tensors += [Tensor(f"tables.{p}", "table", _table(p), ("k",)) for p in PROFILES]
    tensors.append(Tensor("v", "intermediate", v, axes, "(x·mult + rnd) >> shift"))
    for function in FUNCTIONS:
        for p in PROFILES:
            steps = activation_steps(function, v, _table(p))
            if p == PROFILES[0]:
                tensors += [Tensor(f"{function}.u", "intermediate", steps["u"].astype(np.int32),
                                   axes, "table index |v| >> b"),
                            Tensor(f"{function}.f", "intermediate", steps["f"].astype(np.int16),
                                   axes, "interpolation fraction |v| & (2^b - 1)")]
            tensors += [
                Tensor(f"{function}.{p}.r", "intermediate", steps["r"].astype(np.int32), axes,
                       "interpolated r before the sign step"),
                Tensor(f"{function}.{p}.r_signed", "intermediate",
                       steps["r_signed"].astype(np.int32), axes, "r after the sign step"),
                Tensor(f"{function}.{p}.out", "output", steps["out"].astype(np.int16), axes)]
    return GoldenSet(
        "arith_activations_worked", "activations_worked",
        "every step of sigmoid16 (§6.3) and tanh16 (§6.4) — v, u, f, r, signed r, out — for "
        "edge and random int16 inputs under ten (multiplier, shift) input scalings, both tables",
        {"spec": "ARITHMETIC.md §6.3, §6.4", "scalings": [list(s) for s in SCALINGS]}, tensors)


def replay_activations_worked(gset: GoldenSet, backend: str) -> list[Computed]:
    """Recompute ``arith_activations_worked`` with one backend."""
    x, mult, shift = (gset[n].astype(np.int64) for n in ("x", "multiplier", "shift"))
    computed = []
    if backend == "numpy":
        v = _by_scaling(mult, shift, lambda rows, m, s: table_input(x[rows], m, s), x.size)
        computed.append(Computed("v", v, "int4rt.ops.activations.reference.table_input"))
        for function in FUNCTIONS:
            for p in PROFILES:
                steps = activation_steps(function, v, gset[f"tables.{p}"])
                names = ("u", "f") if p == PROFILES[0] else ()
                computed += [Computed(f"{function}.{n}", steps[n], "interpolate") for n in names]
                computed += [Computed(f"{function}.{p}.{n}", steps[n], "interpolate")
                             for n in ("r", "r_signed")]
    impl = get_backend(backend).activations
    for function in FUNCTIONS:
        for p in PROFILES:
            fn = getattr(impl, f"{function}16")
            table = gset[f"tables.{p}"]
            out = _by_scaling(mult, shift, lambda rows, m, s, f=fn, t=table: f(x[rows], t, m, s),
                              x.size)
            computed.append(Computed(f"{function}.{p}.out", out, f"{impl.__name__}.{function}16"))
    return computed
