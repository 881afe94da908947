"""QAT layers: learned per-gate weight scales, the engine's integer layers built from them, and
one LSTM direction run exactly with a straight-through float surrogate (docs/TRAINING.md §6).

Every integer is computed by ``int4rt_train.fakequant`` on the engine's own layer objects
(``int4rt.layers.QLinear``, ``LstmCell``), which are built here from the float weights, the
learned scales and the activation formats by the converter's rules (``int4rt.quantization``:
``quantize_weight_codes``, ``requant_params``, ``hidden_requant``; bias codes as
``int4rt_convert.build.Builder.linear``). In training, a float surrogate runs beside the
integers on their dequantized values (``straight_through``): forward values are the engine's,
gradients the surrogate's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from int4rt.layers import ActQuant, LstmCell, QLinear
from int4rt.quantization import GATE_PRE_SCALE, weight_qmax
from int4rt_convert.build import Builder
from int4rt_convert.float_model import Linear, Lstm
from int4rt_convert.quantizers import weight_scales
from int4rt_train import fakequant as fq
from int4rt_train.fakequant import ActClip, straight_through

MIN_SCALE = 1e-8  # a learned scale is floored here (a scale must stay positive)
LSTM_GATES = 4  # i, f, g, o blocks of an LSTM weight (ARITHMETIC.md §8.1)
SCALE_INIT = ("sawb", "mse")


def initial_scales(weight: torch.Tensor, blocks: int, bits: int, method: str) -> torch.Tensor:
    """One float32 scale per gate block of ``weight`` by the converter's SAWB or MSE clip
    (``weight_scales``, per gate; SAWB: α = c1·√E[w²] + c2·E|w|, max|w| when α ≤ 0)."""
    values = weight.detach().numpy()
    rows = values.shape[0]
    scales = weight_scales(values, bits, method, "per_gate", blocks)[::rows // blocks]
    return torch.from_numpy(scales.copy())


def add_weight_scale(owner: nn.Module, name: str, blocks: int, bits: int, method: str) -> None:
    """Register ``<name>_scale`` [blocks] on ``owner``: weight ``name``'s block scales."""
    owner.register_parameter(f"{name}_scale", nn.Parameter(
        initial_scales(getattr(owner, name), blocks, bits, method)))


def block_scales(scale: torch.Tensor) -> np.ndarray:
    """The float32 scales a learned ``<weight>_scale`` stands for (floored at MIN_SCALE)."""
    return np.maximum(scale.detach().numpy(), np.float32(MIN_SCALE)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class QuantizedWeight:
    """A float weight [N, K] with its learned block scales: what the engine and the surrogate
    need of it."""

    weight: torch.Tensor
    scale: torch.Tensor
    bits: int

    def row_scales(self) -> np.ndarray:
        """Float32 scale of every row (block b covers rows [b·N/G, (b+1)·N/G))."""
        rows = self.weight.shape[0]
        return np.repeat(block_scales(self.scale), rows // self.scale.shape[0])

    def surrogate(self, codes: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """Value ``codes · s`` (the engine's weight), gradient of LSQ fake quantization: the
        identity to the weight inside ±qmax·s, the LSQ gradient (scaled by 1/√(n·qmax)) to s."""
        qmax = weight_qmax(self.bits)
        blocks = self.scale.shape[0]
        grad_scale = 1.0 / float(np.sqrt(self.weight.numel() / blocks * qmax))
        s = self.scale.clamp(min=MIN_SCALE)
        s = s * grad_scale + (s - s * grad_scale).detach()
        s_rows = s.repeat_interleave(self.weight.shape[0] // blocks)[:, None]
        scaled = (self.weight / s_rows).clamp(-qmax, qmax)
        fake = (scaled + (torch.floor(scaled + 0.5) - scaled).detach()) * s_rows
        exact = torch.from_numpy(codes.astype(np.float32) * rows[:, None])
        return straight_through(exact, fake)


def build_qlinear(builder: Builder, name: str, weight: QuantizedWeight,
                  bias: np.ndarray | None, x_format: ActQuant, out_scale: float
                  ) -> tuple[QLinear, np.ndarray]:
    """A §7.1 layer from learned scales by the converter itself (``Builder.linear`` with the
    checkpoint's scales, CONVERT.md §1.3): weight codes, int32 bias codes in the accumulator
    scale s_x·s_w, one (M, s) per gate block; (layer, float32 row scales used)."""
    layer = builder.linear(name, Linear(weight.weight.detach().numpy(), bias,
                                        block_scales(weight.scale)),
                           weight.bits, x_format, out_scale, weight.scale.shape[0])
    return layer, builder.info.linears[name].scales


@dataclass(frozen=True, eq=False)
class LstmDirection:
    """One LSTM direction's float parameters and learned scales."""

    w_ih: QuantizedWeight
    w_hh: QuantizedWeight
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None

    def bias(self) -> torch.Tensor | None:
        """b_ih + b_hh (float32, as the converter sums them), or None."""
        present = [b for b in (self.b_ih, self.b_hh) if b is not None]
        if not present:
            return None
        return present[0] if len(present) == 1 else present[0] + present[1]

    def cell(self, builder: Builder, prefix: str, layer: str, x_format: ActQuant,
             h_format: ActQuant) -> tuple[LstmCell, tuple[np.ndarray, np.ndarray]]:
        """The engine's ``LstmCell`` ``prefix`` of LSTM layer ``layer`` (§8.1), built by the
        converter (``Builder.cell``: gate FCs, cell scale and clip, hidden requantization),
        and the row scales of its two weights."""
        bias = self.bias()
        lstm = Lstm(self.w_ih.weight.detach().numpy(), self.w_hh.weight.detach().numpy(),
                    None if bias is None else bias.detach().numpy(), 0.0,
                    block_scales(self.w_ih.scale), block_scales(self.w_hh.scale))
        cell = builder.cell(prefix, layer, lstm, x_format, h_format)
        linears = builder.info.linears
        return cell, (linears[f"{prefix}.input_fc"].scales,
                      linears[f"{prefix}.recurrent_fc"].scales)


def dequantized(codes: torch.Tensor, fmt: ActQuant) -> torch.Tensor:
    """Float32 values ``(codes − zp) · s`` of activation codes."""
    return (codes - fmt.zero_point).float() * np.float32(fmt.scale)


@dataclass
class DirectionOutput:
    """Hidden codes [B, T, H] (int64), their surrogate values (training) and the records."""

    codes: torch.Tensor
    values: torch.Tensor | None
    records: dict[str, torch.Tensor]


def run_direction(cell: LstmCell, rows: tuple[np.ndarray, np.ndarray],
                  direction: LstmDirection, clip: ActClip, x_codes: torch.Tensor,
                  x_values: torch.Tensor | None, lengths: torch.Tensor | None,
                  reverse: bool, table: torch.Tensor, rounding: str,
                  record: bool = False) -> DirectionOutput:
    """§8.2–§8.5 over a padded batch: codes [B, T, I] → hidden codes [B, T, H].

    ``cell`` and ``rows`` are ``direction.cell``'s (the engine's layer, the row scales used).

    Row b steps only while t < lengths[b] (all rows when ``lengths`` is None); a backward
    direction starts at its own last frame with the initial state (h = zp, c = 0), as the
    engine does for each utterance alone. With ``x_values`` (training), the float surrogate
    runs beside the integers and the hidden values carry its gradient. ``record`` keeps the
    §8.7 records (``input_proj``, ``gate_pre``, ``gate.*``, ``cell``, ``hidden``) [B, T, …].
    """
    h_format = cell.hidden
    ih_rows, hh_rows = rows
    batch, steps, _ = x_codes.shape
    size = cell.hidden_size
    gx = fq.project(cell.input_fc, x_codes.reshape(batch * steps, -1), cell.input,
                    rounding).reshape(batch, steps, -1)
    h = torch.full((batch, size), h_format.zero_point, dtype=torch.long)
    c = torch.zeros((batch, size), dtype=torch.long)
    training = x_values is not None
    if training:
        wq_ih = direction.w_ih.surrogate(cell.input_fc.weight, ih_rows)
        wq_hh = direction.w_hh.surrogate(cell.recurrent_fc.weight, hh_rows)
        bias = direction.bias()
        gx_s = x_values @ wq_ih.T + (0.0 if bias is None else bias)
        h_v = x_values.new_zeros((batch, size))
        c_v = x_values.new_zeros((batch, size))
    cell_step = np.float32(2.0 ** cell.cell_scale_log2)
    codes: list[torch.Tensor | None] = [None] * steps
    values: list[torch.Tensor | None] = [None] * steps
    records: dict[str, list[torch.Tensor | None]] = {}
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        gh = fq.project(cell.recurrent_fc, h, h_format, rounding)
        state = fq.cell_update(cell, gx[:, t], gh, c, table, rounding)
        active = None if lengths is None else (lengths > t)[:, None]
        h = state["hidden"] if active is None else torch.where(active, state["hidden"], h)
        c = state["cell"] if active is None else torch.where(active, state["cell"], c)
        codes[t] = h
        if training:
            pre = straight_through(state["gate_pre"] * GATE_PRE_SCALE,
                                   gx_s[:, t] + h_v @ wq_hh.T)
            i, f, g, o = (straight_through(state[f"gate.{gate}"] * 2.0**-15, act(part))
                          for gate, act, part in zip("ifgo", (torch.sigmoid, torch.sigmoid,
                                                              torch.tanh, torch.sigmoid),
                                                     pre.split(size, dim=1), strict=True))
            c_new = straight_through(state["cell"] * cell_step, f * c_v + i * g)
            h_new = straight_through(dequantized(state["hidden"], h_format),
                                     clip.clamp(o * torch.tanh(c_new)))
            h_v = h_new if active is None else torch.where(active, h_new, h_v)
            c_v = c_new if active is None else torch.where(active, c_new, c_v)
            values[t] = h_v
        if record:
            state["input_proj"] = gx[:, t]
            for key, value in state.items():
                records.setdefault(key, [None] * steps)[t] = value
    stacked = {key: torch.stack(value, dim=1) for key, value in records.items()}
    return DirectionOutput(torch.stack(codes, dim=1),
                           torch.stack(values, dim=1) if training else None, stacked)
