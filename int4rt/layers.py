"""Quantized layer parameters: what a model file holds, as the operators consume it.

Every field is an integer (or an integer array) of docs/ARITHMETIC.md; float scales appear only
where a float enters the integer path (feature quantization) or for reports. ``validate``
methods check the invariants the operators rely on and raise ``ArithmeticSpecError``; the
model loader turns those into ``FormatError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.ops.formats import INT32_MAX, as_int64, check_range
from int4rt.ops.gemv.reference import accumulator_bound
from int4rt.ops.int4.reference import pack_int4
from int4rt.ops.log_softmax.tables import FRAC_BITS_MAX as LOGIT_FRAC_BITS_MAX
from int4rt.ops.log_softmax.tables import FRAC_BITS_MIN as LOGIT_FRAC_BITS_MIN
from int4rt.ops.requantize.reference import (
    SHIFT_MAX,
    SHIFT_MIN,
    check_rounding,
    quantize_multiplier,
)
from int4rt.options import JOINT_MODES


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ArithmeticSpecError(message)


def _check_int_array(name: str, arr: np.ndarray, dtype: type, shape: tuple[int, ...]) -> None:
    _need(isinstance(arr, np.ndarray), f"{name} must be an array")
    _need(arr.dtype == np.dtype(dtype), f"{name} must be {np.dtype(dtype)}, got {arr.dtype}")
    _need(arr.shape == shape, f"{name} must have shape {shape}, got {arr.shape}")


def _check_requant(name: str, multiplier: int, shift: int) -> None:
    _need(0 <= multiplier <= INT32_MAX, f"{name} multiplier {multiplier} outside [0, 2^31 - 1]")
    _need(SHIFT_MIN <= shift <= SHIFT_MAX, f"{name} shift {shift} outside [-31, 30]")


@dataclass(frozen=True)
class ActQuant:
    """An activation format: ``bits``-wide codes, signed or not, with a zero point (§2, §8.1).

    ``scale`` (float32 value) is what one code step means; the integer path never uses it
    except to quantize float features at the model input.
    """

    bits: int
    signed: bool
    zero_point: int
    scale: float

    @property
    def qmin(self) -> int:
        """Smallest code."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        """Largest code."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def dtype(self) -> np.dtype:
        """The NumPy type holding the codes: int8 for signed formats, uint8 otherwise."""
        return np.dtype(np.int8 if self.signed else np.uint8)

    def validate(self, name: str) -> None:
        """Check bits ∈ {4, 8}, the zero point within the code range, a finite positive scale."""
        _need(self.bits in (4, 8), f"{name}: activation bits must be 4 or 8, got {self.bits}")
        _need(self.qmin <= self.zero_point <= self.qmax,
              f"{name}: zero point {self.zero_point} outside [{self.qmin}, {self.qmax}]")
        _need(np.isfinite(self.scale) and self.scale > 0,
              f"{name}: scale must be finite and positive, got {self.scale}")

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Float values to codes: ``clamp(floor(x / scale + 1/2) + zp)`` in float64 (§8.6)."""
        q = np.floor(np.asarray(values, dtype=np.float64) / np.float64(self.scale) + 0.5)
        q = np.clip(q + self.zero_point, self.qmin, self.qmax)
        return q.astype(self.dtype)


@dataclass(frozen=True, eq=False)
class QLinear:
    """An integer fully-connected layer, §7.1: int4/int8 weight codes held in int8.

    ``multiplier``/``shift`` are per output row; ``bias`` is int32 (zeros when the layer has
    none). Outputs are clamped to [``out_min``, ``out_max``] after adding ``out_zero_point``.
    ``blocks`` G > 0 says the (multiplier, shift) pairs are constant on G equal blocks of rows
    (block b: rows [b·N/G, (b+1)·N/G), the gates i, f, g, o of an LSTM matrix when G = 4) and
    are stored once per block (docs/FORMAT.md §2.4 granularity ``per_gate``); 0: per row. The
    arrays here are per row either way, so the operators never see the difference.
    """

    weight: np.ndarray
    weight_bits: int
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    blocks: int = 0

    @property
    def n_out(self) -> int:
        """Output rows N."""
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        """Inputs K."""
        return self.weight.shape[1]

    @cached_property
    def row_sums(self) -> np.ndarray:
        """Σ_k weight[n, k] per row, int32: folds a zero point into the accumulator (§7.1)."""
        return self.weight.sum(axis=1, dtype=np.int64).astype(np.int32)

    @property
    def granularity(self) -> str:
        """How the file stores (multiplier, shift): ``per_row`` or ``per_gate`` (FORMAT.md §2.4)."""
        return "per_gate" if self.blocks else "per_row"

    def block_requant(self) -> tuple[np.ndarray, np.ndarray]:
        """(multiplier, shift) once per block: [G] arrays (per row when ``blocks`` is 0)."""
        step = self.n_out // self.blocks if self.blocks else 1
        return self.multiplier[::step].copy(), self.shift[::step].copy()

    @cached_property
    def max_abs_weight(self) -> int:
        """Largest |weight code|."""
        return int(np.abs(self.weight.astype(np.int16)).max()) if self.weight.size else 0

    @cached_property
    def packed(self) -> np.ndarray:
        """The weight codes packed two per byte (§5), for int4 layers."""
        return pack_int4(self.weight)

    def validate(self, name: str, activation_bits: int = 8) -> None:
        """Check dtypes, shapes, code ranges, requantization parameters and the int32 bound."""
        _need(self.weight_bits in (4, 8), f"{name}: weight bits must be 4 or 8")
        _need(isinstance(self.weight, np.ndarray) and self.weight.ndim == 2,
              f"{name}: weight must be a 2-D array")
        n, k = self.weight.shape
        _check_int_array(f"{name}.weight", self.weight, np.int8, (n, k))
        lo = -(1 << (self.weight_bits - 1))
        hi = (1 << (self.weight_bits - 1)) - 1
        if self.weight.size:
            _need(int(self.weight.min()) >= lo and int(self.weight.max()) <= hi,
                  f"{name}.weight: codes outside [{lo}, {hi}] for {self.weight_bits}-bit weights")
        _check_int_array(f"{name}.bias", self.bias, np.int32, (n,))
        _check_int_array(f"{name}.multiplier", self.multiplier, np.int32, (n,))
        _check_int_array(f"{name}.shift", self.shift, np.int32, (n,))
        if n:
            _need(int(self.multiplier.min()) >= 0, f"{name}.multiplier: negative entry")
            _need(SHIFT_MIN <= int(self.shift.min()) and int(self.shift.max()) <= SHIFT_MAX,
                  f"{name}.shift: entry outside [-31, 30]")
            bound = accumulator_bound(k, self.weight_bits, activation_bits)
            bound += int(np.abs(self.bias.astype(np.int64)).max())
            _need(bound <= INT32_MAX,
                  f"{name}: accumulator bound {bound} exceeds int32 (§7.2)")
        self._validate_blocks(name, n)

    def _validate_blocks(self, name: str, rows: int) -> None:
        """``blocks`` divides the rows and (M, s) is constant on each block (FORMAT.md §2.4)."""
        blocks = self.blocks
        _need(type(blocks) is int and 0 <= blocks,
              f"{name}.blocks: expected an integer >= 0, got {blocks!r}")
        if not blocks:
            return
        _need(rows % blocks == 0,
              f"{name}.blocks: {blocks} blocks do not divide the {rows} rows")
        for part, values in (("multiplier", self.multiplier), ("shift", self.shift)):
            split = values.reshape(blocks, -1)
            uneven = np.flatnonzero((split != split[:, :1]).any(axis=1))
            _need(not uneven.size, f"{name}.{part}: differs within row block "
                                   f"{uneven[0] if uneven.size else 0} of {blocks}; "
                                   "per_gate needs one value per block")


@dataclass(frozen=True, eq=False)
class LstmCell:
    """One direction of one integer LSTM layer (§8.1–§8.4).

    ``input_fc`` ([4H, I], with bias) and ``recurrent_fc`` ([4H, H], zero bias) produce Q3.12
    gate pre-activations, rows in gate order i, f, g, o. The cell state is int16 with scale
    ``2^cell_scale_log2``; ``cell_clip`` (cell codes, 0 = none) bounds it. ``hidden_multiplier``
    and ``hidden_shift`` requantize ``tanh(c)·o`` (scale 2^-30) to the ``hidden`` format.
    """

    input_fc: QLinear
    recurrent_fc: QLinear
    input: ActQuant
    hidden: ActQuant
    cell_scale_log2: int
    cell_clip: int
    hidden_multiplier: int
    hidden_shift: int

    @property
    def hidden_size(self) -> int:
        """H."""
        return self.recurrent_fc.n_in

    @property
    def input_size(self) -> int:
        """I."""
        return self.input_fc.n_in

    @property
    def forget_requant(self) -> tuple[int, int]:
        """(M, s) of ``f·c`` back to the cell scale: quantize_multiplier(2^-15) (§8.3)."""
        return quantize_multiplier(2.0**-15)

    @property
    def input_requant(self) -> tuple[int, int]:
        """(M, s) of ``i·g`` to the cell scale: quantize_multiplier(2^(-30 - cell_scale_log2))."""
        return quantize_multiplier(2.0 ** (-30 - self.cell_scale_log2))

    def linear_layers(self, prefix: str) -> Iterator[tuple[str, QLinear, ActQuant]]:
        """The gate FCs: (name, layer, format of its input codes)."""
        yield f"{prefix}.input_fc", self.input_fc, self.input
        yield f"{prefix}.recurrent_fc", self.recurrent_fc, self.hidden

    def validate(self, name: str) -> None:
        """Check the shapes agree and every parameter is inside its range."""
        self.input.validate(f"{name}.input")
        self.hidden.validate(f"{name}.hidden")
        h = self.hidden_size
        _need(h > 0, f"{name}: hidden size must be positive")
        _need(self.input_fc.weight.shape[0] == 4 * h,
              f"{name}.input_fc: {self.input_fc.weight.shape[0]} rows, expected 4*H = {4 * h}")
        _need(self.recurrent_fc.weight.shape == (4 * h, h),
              f"{name}.recurrent_fc: shape {self.recurrent_fc.weight.shape}, "
              f"expected ({4 * h}, {h})")
        self.input_fc.validate(f"{name}.input_fc", self.input.bits)
        self.recurrent_fc.validate(f"{name}.recurrent_fc", self.hidden.bits)
        _need(not self.recurrent_fc.bias.any(), f"{name}.recurrent_fc: bias must be zero")
        _need(-20 <= self.cell_scale_log2 <= 0,
              f"{name}: cell_scale_log2 {self.cell_scale_log2} outside [-20, 0]")
        _need(0 <= self.cell_clip <= 32767,
              f"{name}: cell_clip {self.cell_clip} outside [0, 32767]")
        _check_requant(f"{name}.hidden", self.hidden_multiplier, self.hidden_shift)


@dataclass(frozen=True, eq=False)
class EncoderLayer:
    """One encoder layer: one (uni) or two (forward, backward) cells sharing formats (§8.5).

    ``stack`` consecutive input frames are concatenated (and the frame rate divided by it)
    before the layer; 1 means no stacking.
    """

    cells: tuple[LstmCell, ...]
    stack: int = 1

    @property
    def bidirectional(self) -> bool:
        """True for a forward and a backward cell."""
        return len(self.cells) == 2

    @property
    def output_size(self) -> int:
        """Width of the layer's output codes."""
        return sum(cell.hidden_size for cell in self.cells)

    @property
    def hidden(self) -> ActQuant:
        """The output format (shared by both directions)."""
        return self.cells[0].hidden


@dataclass(frozen=True, eq=False)
class Encoder:
    """Stacked (Bi-)LSTM encoder over quantized features in format ``input``."""

    input: ActQuant
    layers: tuple[EncoderLayer, ...] = field(default_factory=tuple)

    @property
    def output(self) -> ActQuant:
        """Format of the encoder's output codes."""
        return self.layers[-1].hidden if self.layers else self.input


def initial_state(cell: LstmCell, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """h = the hidden zero point, c = 0 (§8.4)."""
    h = np.full((batch, cell.hidden_size), cell.hidden.zero_point, dtype=cell.hidden.dtype)
    return h, np.zeros((batch, cell.hidden_size), dtype=np.int16)


def stack_frames(x: np.ndarray, factor: int, zero_point: int) -> np.ndarray:
    """Concatenate ``factor`` consecutive frames; pad the tail with the zero point (§8.5)."""
    if factor == 1:
        return x
    steps, width = x.shape
    padded_steps = -(-steps // factor) * factor
    padded = np.full((padded_steps, width), zero_point, dtype=x.dtype)
    padded[:steps] = x
    return padded.reshape(padded_steps // factor, factor * width)


@dataclass(frozen=True, eq=False)
class Predictor:
    """Prediction network: an embedding table of codes in ``layers[0].input`` format, then a
    stack of unidirectional LSTM cells (§8.6). The blank id's embedding starts every history.
    """

    embedding: np.ndarray
    layers: tuple[LstmCell, ...]

    @property
    def output(self) -> ActQuant:
        """Format of the predictor's output codes."""
        return self.layers[-1].hidden

    def validate(self, name: str) -> None:
        """Check the embedding codes against the first layer's input format."""
        check_embedding(f"{name}.embedding", self.embedding, self.layers[0])


def check_embedding(name: str, embedding: object, first: LstmCell) -> None:
    """Check an embedding table: 2-D codes of ``first``'s input format, its input width."""
    fmt = first.input
    _need(isinstance(embedding, np.ndarray) and embedding.ndim == 2,
          f"{name} must be a 2-D array")
    _check_int_array(name, embedding, fmt.dtype, embedding.shape)
    _need(embedding.shape[1] == first.input_size,
          f"{name} width {embedding.shape[1]} != LSTM input size {first.input_size}")
    if embedding.size:
        _need(int(embedding.min()) >= fmt.qmin and int(embedding.max()) <= fmt.qmax,
              f"{name}: codes outside [{fmt.qmin}, {fmt.qmax}]")





@dataclass(frozen=True, eq=False)
class Joint:
    """Joint network (§9): projections to int16, combined, tanh, requantized, output linear.

    ``additive``: both projections produce Q3.12 and are added with saturation.
    ``multiplicative``: their int16 product is requantized to Q3.12 by
    (``combine_multiplier``, ``combine_shift``). ``tanh`` (Q0.15) is requantized to
    ``hidden`` by (``hidden_multiplier``, ``hidden_shift``); ``out`` gives int32 logits with
    scale 2^-``logit_frac_bits``.
    """

    enc_proj: QLinear
    pred_proj: QLinear
    mode: str
    combine_multiplier: int
    combine_shift: int
    hidden: ActQuant
    hidden_multiplier: int
    hidden_shift: int
    out: QLinear
    logit_frac_bits: int

    def validate_combine(self, name: str) -> None:
        """Check the mode and the scalar requantization parameters of §9.2."""
        _need(self.mode in JOINT_MODES,
              f"{name}: unknown mode {self.mode!r}; expected one of {', '.join(JOINT_MODES)}")
        _check_requant(f"{name}.combine", self.combine_multiplier, self.combine_shift)
        _check_requant(f"{name}.hidden", self.hidden_multiplier, self.hidden_shift)
        _need(LOGIT_FRAC_BITS_MIN <= self.logit_frac_bits <= LOGIT_FRAC_BITS_MAX,
              f"{name}: logit_frac_bits {self.logit_frac_bits} outside "
              f"[{LOGIT_FRAC_BITS_MIN}, {LOGIT_FRAC_BITS_MAX}]")

    def validate(self, name: str, enc_format: ActQuant, pred_format: ActQuant) -> None:
        """Check every parameter and that the layer widths chain (§9)."""
        self.validate_combine(name)
        self.hidden.validate(f"{name}.hidden")
        self.enc_proj.validate(f"{name}.enc_proj", enc_format.bits)
        self.pred_proj.validate(f"{name}.pred_proj", pred_format.bits)
        self.out.validate(f"{name}.out", self.hidden.bits)
        width = self.out.n_in
        for part in ("enc_proj", "pred_proj"):
            _need(getattr(self, part).n_out == width,
                  f"{name}.{part}: {getattr(self, part).n_out} outputs, joint width is {width}")


def check_joint_inputs(
    joint: Joint, enc_proj: object, pred_proj: object, rounding: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check the arguments of §9.2; return the projections as int64 [N, J]."""
    check_rounding(rounding)
    joint.validate_combine("joint")
    width = joint.out.n_in
    arrays = []
    for name, values in (("enc_proj", enc_proj), ("pred_proj", pred_proj)):
        arr = as_int64(name, values)
        if arr.ndim != 2 or arr.shape[1] != width:
            raise ArithmeticSpecError(f"{name} has shape {arr.shape}; expected (N, {width})")
        check_range(name, arr, -32768, 32767)
        arrays.append(arr)
    if arrays[0].shape != arrays[1].shape:
        raise ArithmeticSpecError(
            f"enc_proj {arrays[0].shape} and pred_proj {arrays[1].shape} differ in shape"
        )
    return arrays[0], arrays[1]
