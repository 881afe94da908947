"""Golden sets of int4 packing and the fully connected layer (ARITHMETIC.md §5, §7;
docs/VERIFICATION.md §2): every nibble pair and odd-width matrices; layers at extreme codes,
zero points, biases, (M, s) pairs and output ranges in both roundings. The Numba path reads
the packed bytes back through its int4 GEMV and recomputes every layer output (int8-held and
packed weights); the exact accumulators are checked on the NumPy path.
"""

from __future__ import annotations

import numpy as np

from int4rt import arith
from int4rt.golden.store import Computed, GoldenSet, Tensor
from int4rt.ops.formats import INT32_MAX, INT32_MIN
from int4rt.ops.gemv import numba as gemv_numba

SEED = 20_250_601
ROUNDINGS = arith.ROUNDING_MODES


def _pack_cases() -> dict[str, np.ndarray]:
    nibbles = np.arange(-8, 8)
    pairs = np.stack(np.meshgrid(nibbles, nibbles, indexing="ij"), -1).reshape(256, 2)
    rng = np.random.default_rng(SEED + 2)
    return {"pairs": pairs[:, ::-1].astype(np.int8),  # row j = (low nibble, high nibble) codes
            "odd": np.array([[1, -2, 7, -8, 3]], dtype=np.int8),
            "matrix": np.array([[1, 2, 3], [-1, -2, -3]], dtype=np.int8),
            "straddle": rng.integers(-8, 8, size=(5, 7)).astype(np.int8)}


def build_pack_int4() -> GoldenSet:
    """pack_int4 on every (low, high) nibble pair, an odd count and odd-width matrices (§5)."""
    tensors = []
    for case, codes in _pack_cases().items():
        tensors += [Tensor(f"{case}.codes", "input", codes, ("n", "k")),
                    Tensor(f"{case}.packed", "output", arith.pack_int4(codes), ("byte",),
                           "code 2j in bits 3..0 of byte j, code 2j+1 in bits 7..4")]
    return GoldenSet(
        "arith_pack_int4", "pack_int4",
        "int4 packing over the flattened row-major tensor (§5): all 256 nibble pairs, the odd "
        "count [1, -2, 7, -8, 3] (padding nibble 0), and [N, K] matrices with odd K whose rows "
        "straddle bytes", {"spec": "ARITHMETIC.md §5"}, tensors)


def replay_pack_int4(gset: GoldenSet, backend: str) -> list[Computed]:
    """Pack and unpack (NumPy); read the packed bytes through the Numba int4 GEMV (Numba)."""
    computed = []
    for case in _pack_cases():
        codes, packed = gset[f"{case}.codes"], gset[f"{case}.packed"]
        n, k = codes.shape
        if backend == "numpy":
            computed += [Computed(f"{case}.packed", arith.pack_int4(codes), "arith.pack_int4"),
                         Computed(f"{case}.codes", arith.unpack_int4(packed, n * k).reshape(n, k),
                                  "arith.unpack_int4")]
        else:  # identity activations with factor 1.0 read every weight code back: y[b, n] = w[n, b]
            y = gemv_numba.fully_connected_int4(
                np.eye(k, dtype=np.int8), packed, n, None, x_zero_point=0, multiplier=1 << 30,
                shift=1, y_zero_point=0, y_min=-8, y_max=7)
            computed.append(Computed(f"{case}.codes", y.T,
                                     "int4rt.ops.gemv.numba.fully_connected_int4 "
                                     "(identity activations)"))
    return computed


def _fc_cases() -> list[dict]:
    """Layers with extreme codes, zero points, biases, (M, s) pairs and output ranges."""
    rng = np.random.default_rng(SEED + 3)
    qm = arith.quantize_multiplier(0.0123)
    k = 256
    guard_bias = INT32_MAX - k * 128 * 255  # the largest |bias| the §7.1 guard admits at K=256
    w8 = np.concatenate([np.full((1, k), -128), np.full((1, k), 127),
                         np.tile([-128, 127], (1, k // 2)), np.full((1, k), -128),
                         rng.integers(-128, 128, (4, k))]).astype(np.int8)
    pairs = [(1 << 30, 0), (INT32_MAX, 1), (INT32_MIN, 0), qm, (1 << 30, 30), (1, -31),
             (3 << 29, 5), (1 << 30, -14)]
    extremes = dict(weight=w8, weight_bits=8,
                    bias=np.array([guard_bias, -guard_bias, 0, -1, *rng.integers(-9, 9, 4)]),
                    multiplier=np.array([m for m, _ in pairs]),
                    shift=np.array([s for _, s in pairs]), zp_y=0, y_min=INT32_MIN,
                    y_max=INT32_MAX)

    def x_rows(lo: int, hi: int, width: int, dtype: type) -> np.ndarray:
        rows = [np.full(width, lo), np.full(width, hi), np.resize([lo, hi], width),
                rng.integers(lo, hi + 1, width)]
        return np.array(rows, dtype=dtype)

    def w4(n: int, width: int) -> np.ndarray:
        extreme = np.resize([-8, 7], (2, width))
        return np.concatenate([extreme, rng.integers(-8, 8, (n - 2, width))]).astype(np.int8)

    def realistic(n: int) -> dict:
        return dict(multiplier=rng.integers(1 << 30, 1 << 31, n), shift=rng.integers(-14, -5, n))

    return [
        dict(name="worked", description="the worked example of ARITHMETIC.md §7.1",
             x=np.array([[3, -7, 120, -128]], dtype=np.int8), zp_x=-5,
             weight=np.array([[1, -2, 7, -8], [-8, 7, -8, 7]], dtype=np.int8), weight_bits=4,
             bias=np.array([100, -1000]), multiplier=np.full(2, qm[0]), shift=np.full(2, qm[1]),
             zp_y=3, y_min=-128, y_max=127),
        dict(name="int8_zp127", description="int8 codes at -128/127 with zp 127 (x - zp = -255), "
             "biases at the §7.1 guard (acc reaches INT32_MAX), extreme (M, s), int32 output",
             x=x_rows(-128, 127, k, np.int8), zp_x=127, **extremes),
        dict(name="int8_zpm128", description="as int8_zp127 with zp -128 (x - zp = +255)",
             x=x_rows(-128, 127, k, np.int8), zp_x=-128, **extremes),
        dict(name="uint8_zp0_int4_odd", description="uint8 codes with zp 0, int4 weights -8/7, "
             "odd K (packed rows straddle bytes), int16 output",
             x=x_rows(0, 255, 7, np.uint8), zp_x=0, weight=w4(5, 7), weight_bits=4,
             bias=rng.integers(-3000, 3000, 5), zp_y=0, y_min=-32768, y_max=32767,
             **realistic(5)),
        dict(name="uint8_zp255_int4_odd", description="as uint8_zp0_int4_odd with zp 255",
             x=x_rows(0, 255, 7, np.uint8), zp_x=255, weight=w4(5, 7), weight_bits=4,
             bias=rng.integers(-3000, 3000, 5), zp_y=0, y_min=-32768, y_max=32767,
             **realistic(5)),
        dict(name="uint4_zp15", description="uint4 codes (0..15, uint8 container) with zp 15, "
             "int4 weights, K = 33, int8 output with zp -128 (clamps)",
             x=x_rows(0, 15, 33, np.uint8), zp_x=15, weight=w4(6, 33), weight_bits=4,
             bias=rng.integers(-500, 500, 6), zp_y=-128, y_min=-128, y_max=127,
             multiplier=rng.integers(1 << 30, 1 << 31, 6), shift=rng.integers(-6, 0, 6)),
        dict(name="int4_zpm8", description="int4 codes (-8..7, int8 container) with zp -8, int8 "
             "weights, uint8-range output with zp 128",
             x=x_rows(-8, 7, 20, np.int8), zp_x=-8, weight=rng.integers(-128, 128, (6, 20))
             .astype(np.int8), weight_bits=8, bias=rng.integers(-20000, 20000, 6), zp_y=128,
             y_min=0, y_max=255, **realistic(6)),
        dict(name="int4_zp7", description="int4 codes with zp 7, int4 weights, int8 output",
             x=x_rows(-8, 7, 20, np.int8), zp_x=7, weight=w4(6, 20), weight_bits=4,
             bias=rng.integers(-2000, 2000, 6), zp_y=0, y_min=-128, y_max=127, **realistic(6)),
        dict(name="random", description="random int8 codes, zero point, weights, bias and "
             "per-row (M, s); int8 output",
             x=rng.integers(-128, 128, (5, 40)).astype(np.int8), zp_x=int(rng.integers(-128, 128)),
             weight=rng.integers(-128, 128, (16, 40)).astype(np.int8), weight_bits=8,
             bias=rng.integers(-(1 << 20), 1 << 20, 16), zp_y=-3, y_min=-128, y_max=127,
             **realistic(16)),
    ]


FC_SCALARS = ("zp_x", "zp_y", "y_min", "y_max", "weight_bits", "description")


def _fc_kwargs(gset: GoldenSet, case: str, rounding: str) -> dict:
    p = gset.params["cases"][case]
    return dict(x_zero_point=p["zp_x"], multiplier=gset[f"{case}.multiplier"],
                shift=gset[f"{case}.shift"], y_zero_point=p["zp_y"], y_min=p["y_min"],
                y_max=p["y_max"], rounding=rounding)


def _fc_acc(gset: GoldenSet, case: str) -> np.ndarray:
    """``Σ_k w[n,k]·(x[b,k] − zp_x) + bias[n]``, exact (§7.1)."""
    d = gset[f"{case}.x"].astype(np.int64) - gset.params["cases"][case]["zp_x"]
    return d @ gset[f"{case}.weight"].astype(np.int64).T + gset[f"{case}.bias"]


def build_fully_connected() -> GoldenSet:
    """§7.1 layers at extreme codes and zero points, both roundings, int8 and packed int4."""
    tensors, params = [], {}
    for case in _fc_cases():
        name = case["name"]
        params[name] = {key: (int(case[key]) if key != "description" else case[key])
                        for key in FC_SCALARS}
        tensors += [Tensor(f"{name}.x", "input", case["x"], ("b", "k")),
                    Tensor(f"{name}.weight", "param", case["weight"], ("n", "k"),
                           f"int{case['weight_bits']} codes held in int8")]
        if case["weight_bits"] == 4:
            tensors.append(Tensor(f"{name}.weight_packed", "param",
                                  arith.pack_int4(case["weight"]), ("byte",), "§5 packing"))
        tensors += [Tensor(f"{name}.{key}", "param", case[key].astype(np.int32), ("n",))
                    for key in ("bias", "multiplier", "shift")]
    gset = GoldenSet("arith_fully_connected", "fully_connected",
                     "fully connected layers (§7.1) with extreme activation codes and zero points "
                     "(int8, uint8, int4, uint4 codes), int8 and int4 weights at their extremes, "
                     "biases at the int32 guard, extreme (M, s) pairs and clamped outputs, in "
                     "both roundings", {"spec": "ARITHMETIC.md §7", "cases": params}, tensors)
    for case in params:
        acc = _fc_acc(gset, case)
        tensors.append(Tensor(f"{case}.acc", "intermediate", acc.astype(np.int32), ("b", "n"),
                              "exact accumulator, bias included"))
        for rounding in ROUNDINGS:
            kw = _fc_kwargs(gset, case, rounding)
            requantized = arith.requantize(acc, kw["multiplier"], kw["shift"], rounding)
            y = arith.fully_connected(gset[f"{case}.x"], gset[f"{case}.weight"],
                                      gset[f"{case}.bias"], **kw)
            tensors += [Tensor(f"{case}.{rounding}.requantized", "intermediate",
                               requantized.astype(np.int64), ("b", "n"),
                               "requantize(acc, M, s) before + zp_y and the clamp"),
                        Tensor(f"{case}.{rounding}.y", "output", y, ("b", "n"))]
    return gset


def replay_fully_connected(gset: GoldenSet, backend: str) -> list[Computed]:
    """Recompute ``arith_fully_connected`` with one backend (int4 layers also from packed)."""
    computed = []
    for case, p in gset.params["cases"].items():
        x, w, bias = gset[f"{case}.x"], gset[f"{case}.weight"], gset[f"{case}.bias"]
        if backend == "numpy":
            acc = _fc_acc(gset, case)
            computed.append(Computed(f"{case}.acc", acc, "exact sum"))
        for rounding in ROUNDINGS:
            kw = _fc_kwargs(gset, case, rounding)
            if backend == "numpy":
                computed += [
                    Computed(f"{case}.{rounding}.requantized",
                             arith.requantize(acc, kw["multiplier"], kw["shift"], rounding),
                             "arith.requantize"),
                    Computed(f"{case}.{rounding}.y", arith.fully_connected(x, w, bias, **kw),
                             "arith.fully_connected")]
                continue
            computed.append(Computed(f"{case}.{rounding}.y",
                                     gemv_numba.fully_connected(x, w, bias, **kw),
                                     "int4rt.ops.gemv.numba.fully_connected"))
            if p["weight_bits"] == 4:
                computed.append(Computed(
                    f"{case}.{rounding}.y", gemv_numba.fully_connected_int4(
                        x, gset[f"{case}.weight_packed"], w.shape[0], bias, **kw),
                    "int4rt.ops.gemv.numba.fully_connected_int4 (packed weights)"))
    return computed
