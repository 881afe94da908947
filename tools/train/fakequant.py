"""Exact integer building blocks for QAT, in PyTorch (first pieces; docs/TRAINING.md §6).

The QAT forward must produce int4rt's integers exactly, so the integer steps run on int64
tensors with the rounding of docs/ARITHMETIC.md, never through float rounding; gradients pass
straight through (``straight_through``). Implemented so far: requantization (§4, both modes,
per-row multipliers and shifts) and the encoder's feature quantizer (§8.6).
"""

from __future__ import annotations

import torch

from int4rt.layers import ActQuant
from int4rt_convert.quantizers import activation_format

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def srdhm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Saturating rounding doubling high multiply of int32 values in int64 (§4.1)."""
    both_min = (a == INT32_MIN) & (b == INT32_MIN)
    high = torch.bitwise_right_shift(a * b + (1 << 30), 31)
    return torch.where(both_min, torch.full_like(high, INT32_MAX), high)


def rounding_divide_by_pot(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``x / 2^exponent`` rounded half away from zero, exponent in [0, 31] (§4.2)."""
    mask = torch.bitwise_left_shift(torch.ones_like(exponent), exponent) - 1
    threshold = torch.bitwise_right_shift(mask, 1) + (x < 0).long()
    return torch.bitwise_right_shift(x, exponent) + (torch.bitwise_and(x, mask) > threshold).long()


def wrap_int32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement wrap of int64 values to int32 (§1)."""
    return torch.bitwise_and(x + (1 << 31), 0xFFFFFFFF) - (1 << 31)


def requantize(acc: torch.Tensor, multiplier: torch.Tensor, shift: torch.Tensor,
               rounding: str) -> torch.Tensor:
    """§4: ``acc · M · 2^(s − 31)`` rounded in mode ``rounding``; int64, not clamped.

    ``acc`` int32 values, ``multiplier`` and ``shift`` broadcastable to it (e.g. one per row).
    """
    acc, multiplier, shift = torch.broadcast_tensors(acc.long(), multiplier.long(), shift.long())
    if rounding == "double":
        left = shift.clamp(min=0)
        right = (-shift).clamp(min=0)
        x = wrap_int32(torch.bitwise_left_shift(acc, left))
        return rounding_divide_by_pot(srdhm(x, multiplier), right)
    if rounding == "single":
        half = torch.bitwise_left_shift(torch.ones_like(shift), 30 - shift)
        return torch.bitwise_right_shift(acc * multiplier + half, 31 - shift)
    raise ValueError(f"rounding must be 'double' or 'single', got {rounding!r}")


def quantize_codes(values: torch.Tensor, scale: float, zero_point: int, qmin: int,
                   qmax: int) -> torch.Tensor:
    """§8.6: ``clamp(floor(x / s + 1/2) + zp, qmin, qmax)`` in float64 from the float32 ``s``."""
    step = torch.tensor(scale, dtype=torch.float32).double()
    codes = torch.floor(values.double() / step + 0.5) + zero_point
    return codes.clamp(qmin, qmax).long()


def straight_through(exact: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """The value of ``exact`` with the gradient of ``surrogate`` (straight-through estimator)."""
    return surrogate + (exact.to(surrogate.dtype) - surrogate).detach()


class FeatureQuantizer(torch.nn.Module):
    """CMVN-normalized features → the engine's input codes, dequantized, with a learnable clip.

    Forward value: ``(codes − zp) · s`` exactly as the engine quantizes (§8.6); gradient: the
    identity inside the clip range (PACT+: the clip bounds learn from the outside).
    """

    def __init__(self, low: float, high: float, bits: int = 4) -> None:
        super().__init__()
        self.bits = bits
        self.act_clip_low = torch.nn.Parameter(torch.tensor(float(low)))
        self.act_clip_high = torch.nn.Parameter(torch.tensor(float(high)))

    def format(self) -> ActQuant:
        """The converter's format for the learned clips (``activation_format``, zero exact)."""
        return activation_format(self.bits, False, self.act_clip_low.item(),
                                 self.act_clip_high.item())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dequantized codes with the straight-through gradient of the clipped input."""
        fmt = self.format()
        codes = quantize_codes(x.detach(), fmt.scale, fmt.zero_point, fmt.qmin, fmt.qmax)
        clipped = torch.maximum(torch.minimum(x, self.act_clip_high), self.act_clip_low)
        return straight_through((codes - fmt.zero_point).double() * fmt.scale, clipped)
