"""Exact integer building blocks for QAT, in PyTorch (first pieces; docs/TRAINING.md §6).

The QAT forward must produce int4rt's integers exactly, so the integer steps run on int64
tensors with the rounding of docs/ARITHMETIC.md, never through float rounding; gradients pass
straight through (``straight_through``). Implemented so far: requantization (§4, both modes,
per-row multipliers and shifts), sigmoid16/tanh16 (§6), the fully-connected layer (§7.1), one
LSTM step (§8.2–§8.4), the encoder's feature quantizer (§8.6), the joint (§9) and the integer
log-softmax (§10).
"""

from __future__ import annotations

import torch

from int4rt.layers import ActQuant, Joint, LstmCell, QLinear
from int4rt.ops.activations.reference import tanh_input_scaling
from int4rt.ops.log_softmax.tables import CUTOFF_NATS, LOG2E_Q30
from int4rt_convert.quantizers import format_with_zero

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


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


class ActClip(torch.nn.Module):
    """A layer's learnable activation clips ``act_clip_low``/``act_clip_high`` and its format.

    The format is the converter's (``format_with_zero`` of the clips, CONVERT.md §1.3), so the
    codes a QAT model computes are the codes the converted model computes. As the encoder's
    input quantizer (§8.6), ``forward`` maps CMVN-normalized features to dequantized codes,
    exactly as the engine quantizes them; gradient: the identity inside the clip range, and to
    the clips from the values outside it (PACT).
    """

    def __init__(self, low: float, high: float, bits: int = 4, signed: bool = False) -> None:
        super().__init__()
        self.bits, self.signed = bits, signed
        self.act_clip_low = torch.nn.Parameter(torch.tensor(float(low)))
        self.act_clip_high = torch.nn.Parameter(torch.tensor(float(high)))

    def format(self) -> ActQuant:
        """The converter's format for the current clips (``format_with_zero``, zero exact)."""
        return format_with_zero(self.bits, self.signed, self.act_clip_low.item(),
                                self.act_clip_high.item())

    def clamp(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` clipped to [low, high]; the PACT surrogate of quantizing it."""
        return torch.maximum(torch.minimum(x, self.act_clip_high), self.act_clip_low)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dequantized codes with the straight-through gradient of the clipped input."""
        fmt = self.format()
        codes = quantize_codes(x.detach(), fmt.scale, fmt.zero_point, fmt.qmin, fmt.qmax)
        return straight_through((codes - fmt.zero_point).double() * fmt.scale, self.clamp(x))


def _interpolate(table: torch.Tensor, magnitude: torch.Tensor, frac_bits: int,
                 saturated: int) -> torch.Tensor:
    """``T[u]·2^b + (a mod 2^b)·(T[u+1] − T[u])``, u = a >> b; ``saturated`` for u ≥ 255 (§6.3)."""
    u = torch.bitwise_right_shift(magnitude, frac_bits)
    index = u.clamp(max=254)
    lo, hi = table[index], table[index + 1]
    value = torch.bitwise_left_shift(lo, frac_bits) + \
        torch.bitwise_and(magnitude, (1 << frac_bits) - 1) * (hi - lo)
    return torch.where(u >= 255, torch.full_like(value, saturated), value)


def _table_input(x: torch.Tensor, multiplier: int, shift: int) -> torch.Tensor:
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    return torch.bitwise_right_shift(x.long() * multiplier + rounding, shift)


def sigmoid16(x: torch.Tensor, table: torch.Tensor, multiplier: int = 3,
              shift: int = 0) -> torch.Tensor:
    """§6.3: sigmoid of int16 values (default Q3.12) to Q0.15, by table interpolation; int64."""
    v = _table_input(x, multiplier, shift)
    r = _interpolate(table.long(), v.abs(), 9, 0x7FFF << 10)
    r = torch.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return torch.bitwise_right_shift(r, 10)


def tanh16(x: torch.Tensor, table: torch.Tensor, multiplier: int = 3,
           shift: int = 0) -> torch.Tensor:
    """§6.4: tanh of int16 values (default Q3.12) to Q0.15 through the sigmoid table; int64."""
    v = _table_input(x, multiplier, shift)
    r = _interpolate(table.long(), v.abs(), 8, 0xFFFF << 8)
    r = torch.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return torch.bitwise_right_shift(r, 8)


def fully_connected(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, x_zero_point: int,
                    multiplier: torch.Tensor, shift: torch.Tensor, y_zero_point: int,
                    y_min: int, y_max: int, rounding: str) -> torch.Tensor:
    """§7.1 on codes [B, K] and weight codes [N, K]: int64 [B, N].

    The dot products run as a float matrix product of the integer codes: float32 when every
    partial sum is bounded by K·max|w|·max|x − zp| < 2^24 (4-bit layers), else float64
    (below 2^53; §7.2 bounds them by 2^31); either way the result is exact.
    """
    centered = x.long() - x_zero_point
    bound = weight.shape[1] * int(weight.abs().amax()) * int(centered.abs().amax()) \
        if centered.numel() else 0
    dtype = torch.float32 if bound < (1 << 24) else torch.float64
    products = centered.to(dtype) @ weight.to(dtype).T
    acc = products.long() + bias.long()
    y = requantize(acc, multiplier, shift, rounding) + y_zero_point
    return y.clamp(y_min, y_max)


def _gate_fc(x: torch.Tensor, layer: QLinear, fmt: ActQuant, rounding: str) -> torch.Tensor:
    return fully_connected(x, torch.from_numpy(layer.weight), torch.from_numpy(layer.bias),
                           fmt.zero_point, torch.from_numpy(layer.multiplier),
                           torch.from_numpy(layer.shift), 0, INT16_MIN, INT16_MAX, rounding)


def lstm_step(cell: LstmCell, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
              table: torch.Tensor, rounding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """§8.2–§8.4: one step of an integer LSTM direction for a batch; (h codes, c) as int64.

    ``x`` [B, I] and ``h`` [B, H] codes, ``c`` [B, H] int16 values, ``table`` the model's
    sigmoid table; ``cell`` the engine's parameters (``int4rt.layers.LstmCell``).
    """
    steps = cell_update(cell, _gate_fc(x, cell.input_fc, cell.input, rounding),
                        _gate_fc(h, cell.recurrent_fc, cell.hidden, rounding), c, table, rounding)
    return steps["hidden"], steps["cell"]


def cell_update(cell: LstmCell, gx: torch.Tensor, gh: torch.Tensor, c: torch.Tensor,
                table: torch.Tensor, rounding: str) -> dict[str, torch.Tensor]:
    """§8.2–§8.4 after the two gate FCs: int16 ``gx``, ``gh`` [B, 4H] and cell ``c`` [B, H] →
    ``gate_pre``, ``gate.{i,f,g,o}``, ``cell``, ``hidden`` (codes), int64, as the trace names."""
    size = cell.hidden_size
    pre = (gx + gh).clamp(INT16_MIN, INT16_MAX)
    i = sigmoid16(pre[:, :size], table)
    f = sigmoid16(pre[:, size:2 * size], table)
    g = tanh16(pre[:, 2 * size:3 * size], table)
    o = sigmoid16(pre[:, 3 * size:], table)
    forget_m, forget_s = cell.forget_requant
    input_m, input_s = cell.input_requant
    forget = requantize(f * c.long(), torch.tensor(forget_m), torch.tensor(forget_s), rounding)
    update = requantize(i * g, torch.tensor(input_m), torch.tensor(input_s), rounding)
    c_new = (forget.clamp(INT16_MIN, INT16_MAX) + update.clamp(INT16_MIN, INT16_MAX)).clamp(
        INT16_MIN, INT16_MAX)
    if cell.cell_clip:
        c_new = c_new.clamp(-cell.cell_clip, cell.cell_clip)
    tanh_c = tanh16(c_new, table, *tanh_input_scaling(cell.cell_scale_log2))
    h_new = requantize(tanh_c * o, torch.tensor(cell.hidden_multiplier),
                       torch.tensor(cell.hidden_shift), rounding) + cell.hidden.zero_point
    return {"gate_pre": pre, "gate.i": i, "gate.f": f, "gate.g": g, "gate.o": o,
            "cell": c_new, "hidden": h_new.clamp(cell.hidden.qmin, cell.hidden.qmax)}


def joint_logits(joint: Joint, enc_proj: torch.Tensor, pred_proj: torch.Tensor,
                 table: torch.Tensor, rounding: str) -> torch.Tensor:
    """§9.2: int32 logits [N, V] of N (frame, history) pairs of int16 projections [N, J]."""
    return joint_stages(joint, enc_proj, pred_proj, table, rounding)["logits"]


def joint_stages(joint: Joint, enc_proj: torch.Tensor, pred_proj: torch.Tensor,
                 table: torch.Tensor, rounding: str) -> dict[str, torch.Tensor]:
    """§9.2 on broadcastable int16 projections [..., J]: ``pre``, ``tanh``, ``hidden`` (codes)
    and int32 ``logits`` [..., V], int64, as the trace names ``joint.*``."""
    if joint.mode == "additive":
        pre = enc_proj.long() + pred_proj.long()
    else:
        pre = requantize(enc_proj.long() * pred_proj.long(), torch.tensor(joint.combine_multiplier),
                         torch.tensor(joint.combine_shift), rounding)
    pre = pre.clamp(INT16_MIN, INT16_MAX)
    act = tanh16(pre, table)
    hidden = requantize(act, torch.tensor(joint.hidden_multiplier),
                        torch.tensor(joint.hidden_shift), rounding) + joint.hidden.zero_point
    hidden = hidden.clamp(joint.hidden.qmin, joint.hidden.qmax)
    out = joint.out
    shape = hidden.shape
    logits = fully_connected(hidden.reshape(-1, shape[-1]), torch.from_numpy(out.weight),
                             torch.from_numpy(out.bias), joint.hidden.zero_point,
                             torch.from_numpy(out.multiplier), torch.from_numpy(out.shift), 0,
                             INT32_MIN, INT32_MAX, rounding)
    return {"pre": pre, "tanh": act, "hidden": hidden,
            "logits": logits.reshape(*shape[:-1], -1)}


def project(layer: QLinear, codes: torch.Tensor, fmt: ActQuant, rounding: str) -> torch.Tensor:
    """§9.1: a joint projection (or LSTM gate FC) to int16 with output zero point 0."""
    return _gate_fc(codes, layer, fmt, rounding)


def log_softmax(logits: torch.Tensor, frac_bits: int, exp2: torch.Tensor,
                ln: torch.Tensor) -> torch.Tensor:
    """§10: integer log-softmax of int32 logits [..., V] with scale 2^−F; int64 values."""
    exp2, ln = exp2.long(), ln.long()
    d = logits.long() - logits.long().amax(dim=-1, keepdim=True)
    a = -d
    inside = a <= CUTOFF_NATS << frac_bits
    b = torch.bitwise_right_shift(torch.where(inside, a, torch.zeros_like(a)) * LOG2E_Q30
                                  + (1 << (frac_bits + 13)), frac_bits + 14)
    n, f = torch.bitwise_right_shift(b, 16), torch.bitwise_and(b, 0xFFFF)
    u, w = torch.bitwise_right_shift(f, 8), torch.bitwise_and(f, 255)
    r = exp2[u] - torch.bitwise_right_shift(w * (exp2[u] - exp2[u + 1]) + 128, 8)
    half = torch.where(n > 0, torch.bitwise_left_shift(torch.ones_like(n), (n - 1).clamp(min=0)),
                       torch.zeros_like(n))
    terms = torch.where(inside, torch.bitwise_right_shift(r + half, n), torch.zeros_like(r))
    s = terms.sum(dim=-1, keepdim=True)
    k = (torch.bitwise_right_shift(s[..., None], torch.arange(31)) > 0).sum(-1) - 1
    frac = torch.bitwise_right_shift(s, k - 16) - (1 << 16)
    u, w = torch.bitwise_right_shift(frac, 8), torch.bitwise_and(frac, 255)
    lnm = ln[u] + torch.bitwise_right_shift(w * (ln[u + 1] - ln[u]) + 128, 8)
    total = torch.bitwise_right_shift((k - 20) * ln[256] + lnm + (1 << (23 - frac_bits)),
                                      24 - frac_bits)
    return (d - total).clamp(min=INT32_MIN)
