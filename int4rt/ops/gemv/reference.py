"""Integer fully-connected layer / GEMV and its accumulator bound (docs/ARITHMETIC.md §7)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.ops.formats import INT32_MAX, INT32_MIN, as_int64, check_range
from int4rt.ops.int4.reference import unpack_int4
from int4rt.ops.requantize.reference import SHIFT_MAX, SHIFT_MIN, check_rounding, requantize

if TYPE_CHECKING:
    from int4rt.layers import ActQuant, QLinear

ACTIVATION_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))

# (x − zp_x [B, K], weights [N, K], bias [N], exact accumulators [B, N]) → accumulators to use
AccumulatorHook = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
_accumulator_hook: list[AccumulatorHook] = []  # empty (off) unless inside accumulator_hook()


@contextmanager
def accumulator_hook(hook: AccumulatorHook) -> Iterator[None]:
    """Pass every accumulator of :func:`fully_connected` through ``hook`` inside the block.

    Off by default; ``int4rt.accumulator_command`` uses it to observe accumulators and to emulate
    narrower ones (docs/VERIFICATION.md §5). The hook must return int32-range values.
    """
    _accumulator_hook.append(hook)
    try:
        yield
    finally:
        _accumulator_hook.pop()


def accumulator_bound(
    k: int, weight_bits: int, activation_bits: int, zero_point: bool = True
) -> int:
    """Largest ``|Σ_k w·(x − zp)|`` over K inputs, before the bias (§7.2).

    Weights are signed ``weight_bits`` codes (|w| ≤ 2^(wb−1)). Activations with a zero
    point inside their own code range give ``|x − zp| ≤ 2^ab − 1``; symmetric signed
    activations (``zero_point=False``) give ``|x| ≤ 2^(ab−1)``.
    """
    if k < 0 or weight_bits < 1 or activation_bits < 1:
        raise ArithmeticSpecError("k must be >= 0 and bit widths >= 1")
    w_max = 1 << (weight_bits - 1)
    x_max = (1 << activation_bits) - 1 if zero_point else 1 << (activation_bits - 1)
    return k * w_max * x_max


def signed_bits(bound: int) -> int:
    """Width of the smallest two's-complement integer holding every value in [−bound, bound]."""
    return int(bound).bit_length() + 1


@dataclass(frozen=True)
class FullyConnectedArgs:
    """Validated arguments of §7.1, as the arrays both implementations consume."""

    x: np.ndarray  # int16 [B, K]: x − x_zero_point
    bias: np.ndarray  # int32 [N]
    multiplier: np.ndarray  # int32 [N]
    shift: np.ndarray  # int32 [N]
    y_zero_point: int
    y_min: int
    y_max: int
    batch_shape: tuple[int, ...]


def prepare_fully_connected(
    x: object,
    n_out: int,
    n_in: int,
    bias: object,
    x_zero_point: int,
    multiplier: object,
    shift: object,
    y_zero_point: int,
    y_min: int,
    y_max: int,
    rounding: str,
) -> FullyConnectedArgs:
    """Check the arguments of a fully-connected layer against §7.1 (weights excluded)."""
    check_rounding(rounding)
    xa = np.asarray(x)
    if xa.dtype not in ACTIVATION_DTYPES:
        raise ArithmeticSpecError(
            f"activations must be int8 or uint8 codes (int4/uint4 codes held in them), "
            f"got dtype {xa.dtype}"
        )
    if xa.ndim not in (1, 2) or xa.shape[-1] != n_in:
        raise ArithmeticSpecError(
            f"activations have shape {xa.shape}; expected ({n_in},) or (batch, {n_in})"
        )
    lo, hi = np.iinfo(xa.dtype).min, np.iinfo(xa.dtype).max
    if not lo <= int(x_zero_point) <= hi:
        raise ArithmeticSpecError(
            f"x_zero_point {x_zero_point} is outside the {xa.dtype} range [{lo}, {hi}]"
        )
    if bias is None:
        bias_arr = np.zeros(n_out, dtype=np.int64)
    else:
        bias_arr = as_int64("bias", bias)
        if bias_arr.shape != (n_out,):
            raise ArithmeticSpecError(f"bias has shape {bias_arr.shape}; expected ({n_out},)")
        check_range("bias", bias_arr, INT32_MIN, INT32_MAX)
    bound = accumulator_bound(n_in, 8, 8) + (int(np.abs(bias_arr).max()) if n_out else 0)
    if bound > INT32_MAX:
        raise ArithmeticSpecError(
            f"an int32 accumulator can overflow: K={n_in} inputs and max |bias| give a "
            f"bound of {bound} > 2^31 - 1 (ARITHMETIC.md §7.2); split the layer"
        )
    per_channel = []
    for name, values, low, high in (
        ("multiplier", multiplier, INT32_MIN, INT32_MAX),
        ("shift", shift, SHIFT_MIN, SHIFT_MAX),
    ):
        arr = as_int64(name, values)
        if arr.ndim == 0:
            arr = np.full(n_out, int(arr), dtype=np.int64)
        if arr.shape != (n_out,):
            raise ArithmeticSpecError(
                f"{name} has shape {arr.shape}; expected a scalar or ({n_out},)"
            )
        check_range(name, arr, low, high)
        per_channel.append(arr.astype(np.int32))
    for name, value in (("y_zero_point", y_zero_point), ("y_min", y_min), ("y_max", y_max)):
        if not INT32_MIN <= int(value) <= INT32_MAX:
            raise ArithmeticSpecError(f"{name} {value} is outside int32")
    if int(y_min) > int(y_max):
        raise ArithmeticSpecError(f"y_min {y_min} is greater than y_max {y_max}")
    x2 = xa.reshape(-1, n_in).astype(np.int16) - np.int16(x_zero_point)
    return FullyConnectedArgs(
        x=x2,
        bias=bias_arr.astype(np.int32),
        multiplier=per_channel[0],
        shift=per_channel[1],
        y_zero_point=int(y_zero_point),
        y_min=int(y_min),
        y_max=int(y_max),
        batch_shape=xa.shape[:-1],
    )


def check_weights(weights: object) -> np.ndarray:
    """``weights`` as an int8 [N, K] array of codes; an error otherwise (§7.1)."""
    w = np.asarray(weights)
    if w.dtype != np.int8 or w.ndim != 2:
        raise ArithmeticSpecError(
            f"weights must be an int8 [N, K] array of codes, got dtype {w.dtype} "
            f"and shape {w.shape}"
        )
    return w


def fully_connected(
    x: object,
    weights: object,
    bias: object,
    *,
    x_zero_point: int,
    multiplier: object,
    shift: object,
    y_zero_point: int,
    y_min: int,
    y_max: int,
    rounding: str = "double",
) -> np.ndarray:
    """``y = clamp(requantize(Σ_k w[n,k]·(x[k] − zp_x) + b[n], M[n], s[n]) + zp_y)`` (§7.1).

    NumPy reference. ``x``: int8/uint8 codes [K] or [B, K]; ``weights``: int8 codes [N, K]
    (int4 codes in [-8, 7] held in int8); ``bias``: int32 [N] or None; ``multiplier`` and
    ``shift``: per output channel [N] or one scalar each. Returns int32 [N] or [B, N].
    """
    w = check_weights(weights)
    args = prepare_fully_connected(
        x, w.shape[0], w.shape[1], bias, x_zero_point, multiplier, shift,
        y_zero_point, y_min, y_max, rounding,
    )
    acc = args.x.astype(np.int64) @ w.astype(np.int64).T + args.bias
    if _accumulator_hook:
        acc = _accumulator_hook[-1](args.x, w, args.bias, acc)
    y = requantize(acc, args.multiplier, args.shift, rounding) + args.y_zero_point
    out = np.clip(y, args.y_min, args.y_max).astype(np.int32)
    return out.reshape(*args.batch_shape, w.shape[0])


def check_packed_weights(
    packed_weights: object, x: object, n_out: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(packed bytes, activations, K) after checking ``n_out`` rows of K int4 codes (§5)."""
    packed = np.asarray(packed_weights)
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise ArithmeticSpecError(
            f"packed int4 weights must be a 1-D uint8 array, got dtype {packed.dtype} "
            f"and shape {packed.shape}"
        )
    x_arr = np.asarray(x)
    n_in = x_arr.shape[-1] if x_arr.ndim else 0
    if packed.size != (n_out * n_in + 1) // 2:
        raise ArithmeticSpecError(
            f"{n_out}x{n_in} int4 weights need {(n_out * n_in + 1) // 2} bytes, "
            f"got {packed.size}"
        )
    if (n_out * n_in) % 2 and packed[-1] >> 4:
        raise ArithmeticSpecError("padding nibble after the last int4 weight must be 0 (§5)")
    return packed, x_arr, n_in


def fully_connected_int4(
    x: object,
    packed_weights: object,
    n_out: int,
    bias: object,
    *,
    x_zero_point: int,
    multiplier: object,
    shift: object,
    y_zero_point: int,
    y_min: int,
    y_max: int,
    rounding: str = "double",
) -> np.ndarray:
    """§7.1 with int4 weights packed over the flattened [N, K] tensor as in §5.

    ``packed_weights`` is the uint8 output of :func:`int4rt.ops.int4.reference.pack_int4`;
    K is taken from the activations. Unpacks the codes, then :func:`fully_connected`.
    """
    packed, x_arr, n_in = check_packed_weights(packed_weights, x, n_out)
    weights = unpack_int4(packed, n_out * n_in).reshape(n_out, n_in)
    return fully_connected(
        x_arr, weights, bias, x_zero_point=x_zero_point, multiplier=multiplier, shift=shift,
        y_zero_point=y_zero_point, y_min=y_min, y_max=y_max, rounding=rounding,
    )


def output_range(out_dtype: type) -> tuple[int, int]:
    """Clamp range of a layer output held in ``out_dtype`` (int16 or int32), §7.1."""
    dtype = np.dtype(out_dtype)
    if dtype not in (np.dtype(np.int16), np.dtype(np.int32)):
        raise ArithmeticSpecError(f"layer outputs are int16 or int32, got {dtype}")
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def linear(x: np.ndarray, layer: QLinear, x_format: ActQuant, rounding: str,
           out_dtype: type) -> np.ndarray:
    """§7.1 for a validated model layer on codes of ``x_format``, output zero point 0.

    The output is clamped to and held in ``out_dtype``: int16 for the gate and joint
    projections (§8.2, §9.1), int32 for logits (§9.2). The one GEMV the models call.
    """
    y_min, y_max = output_range(out_dtype)
    return fully_connected(
        x, layer.weight, layer.bias, x_zero_point=x_format.zero_point,
        multiplier=layer.multiplier, shift=layer.shift, y_zero_point=0,
        y_min=y_min, y_max=y_max, rounding=rounding,
    ).astype(out_dtype)
