"""Model files: ``save_model`` and ``load_model`` for RNN-T and LM models (docs/FORMAT.md).

A model file is a safetensors file (``int4rt.model.framing``, FORMAT.md §1) whose metadata
holds one JSON document describing every layer's quantization (FORMAT.md §2); its tensors
(FORMAT.md §3) hold weight codes (int4 packed two per byte, ARITHMETIC.md §5), per-row
integer requantization parameters, embedding codes, the arithmetic tables and CMVN
statistics. This module maps models to that document and back, strictly; every model read
or written is checked by ``int4rt.model.validation`` (FORMAT.md §4). Nothing is unpickled.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from int4rt import __version__
from int4rt.errors import ArithmeticSpecError, FormatError
from int4rt.layers import (
    LOGIT_FRAC_BITS_MAX,
    LOGIT_FRAC_BITS_MIN,
    ActQuant,
    Encoder,
    EncoderLayer,
    Joint,
    LstmCell,
    Predictor,
    QLinear,
)
from int4rt.model.config import MAX_STACK, JsonObject, read_vocab
from int4rt.model.framing import (
    NUMPY_DTYPES,
    RawTensor,
    dims,
    is_count,
    read_container,
    read_file,
    short,
    write_container,
)
from int4rt.model.frontend_kinds import frontend_kind_json, read_frontend_kind
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import Frontend, RnntModel
from int4rt.model.validation import Model, check_model
from int4rt.ops.formats import INT32_MAX
from int4rt.ops.int4.reference import unpack_int4
from int4rt.ops.profiles import get_profile
from int4rt.ops.requantize.reference import SHIFT_MAX, SHIFT_MIN
from int4rt.options import JOINT_MODES, PROFILES
from int4rt.trace_names import DIRECTIONS

FORMAT_NAME = "int4rt"
FORMAT_VERSION = 1
KALDI_FBANK_VERSION = 2  # the first version with frontend.kind (FORMAT.md §2.6, §7)
PER_GATE_VERSION = 3  # the first version with granularity "per_gate" (FORMAT.md §2.4, §7)
READ_VERSIONS = (FORMAT_VERSION, KALDI_FBANK_VERSION, PER_GATE_VERSION)
GRANULARITIES = ("per_row", "per_gate")
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_DIM = INT32_MAX  # largest logical dimension of a weight matrix (FORMAT.md §2.4)

_profile = functools.cache(get_profile)  # get_profile rebuilds the int4rt table on each call


# --- writing (FORMAT.md §2, §3) -------------------------------------------------------------


def save_model(model: Model, path: str | Path) -> None:
    """Check ``model`` (FORMAT.md §4) and write it to ``path`` as a model file."""
    check_model(model)
    metadata, tensors = _serialize(model)
    write_container(path, metadata, tensors)


def _serialize(model: Model) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    tensors: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": _version(model),
        "architecture": "lm" if isinstance(model, LmModel) else "rnnt",
        "int4rt_version": __version__,
        "profile": model.profile,
        "rounding": model.rounding,
        "vocab": list(model.vocab),
    }
    if isinstance(model, LmModel):
        meta["lm"] = {
            "layers": [_stack_layer_meta(cell, f"lm.layer{i}", tensors)
                       for i, cell in enumerate(model.layers)],
            "out": _linear_meta(model.out, "lm.out", tensors),
            "logit_frac_bits": int(model.logit_frac_bits),
        }
        tensors["lm.embedding"] = model.embedding
    else:
        fe = model.frontend
        meta["blank_id"] = int(model.blank_id)
        meta["frontend"] = {"sample_rate": int(fe.sample_rate), "n_mels": int(fe.n_mels),
                            "frame_length_ms": float(fe.frame_length_ms),
                            "frame_shift_ms": float(fe.frame_shift_ms), "deltas": int(fe.deltas),
                            "cmvn": fe.cmvn_mean is not None,
                            **frontend_kind_json(fe.kaldi_fbank)}
        if fe.cmvn_mean is not None:
            tensors["frontend.cmvn_mean"] = fe.cmvn_mean
            tensors["frontend.cmvn_std"] = fe.cmvn_std
        meta["encoder"] = {"layers": [_encoder_layer_meta(layer, i, tensors)
                                      for i, layer in enumerate(model.encoder.layers)]}
        meta["predictor"] = {"layers": [_stack_layer_meta(cell, f"predictor.layer{i}", tensors)
                                        for i, cell in enumerate(model.predictor.layers)]}
        tensors["predictor.embedding"] = model.predictor.embedding
        meta["joint"] = _joint_meta(model.joint, tensors)
    tensors["tables.sigmoid"] = model.sigmoid_table
    tensors["tables.exp2"] = model.exp2_table
    tensors["tables.ln"] = model.ln_table
    return meta, {name: np.ascontiguousarray(t) for name, t in tensors.items()}


def _version(model: Model) -> int:
    """The lowest version that holds ``model`` (FORMAT.md §7), so older readers keep reading."""
    if any(layer.blocks for _, layer, _ in model.linear_layers()):
        return PER_GATE_VERSION
    if isinstance(model, RnntModel) and model.frontend.kaldi_fbank is not None:
        return KALDI_FBANK_VERSION
    return FORMAT_VERSION


def _format_meta(fmt: ActQuant) -> dict[str, Any]:
    return {"bits": int(fmt.bits), "signed": bool(fmt.signed),
            "zero_point": int(fmt.zero_point), "scale": float(fmt.scale)}


def _linear_meta(layer: QLinear, prefix: str, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    has_bias = bool(layer.bias.any())
    tensors[f"{prefix}.weight"] = layer.packed if layer.weight_bits == 4 else layer.weight
    if has_bias:
        tensors[f"{prefix}.bias"] = layer.bias
    tensors[f"{prefix}.multiplier"], tensors[f"{prefix}.shift"] = layer.block_requant()
    blocks = {"blocks": int(layer.blocks)} if layer.blocks else {}
    return {"weight_bits": int(layer.weight_bits), "granularity": layer.granularity, **blocks,
            "shape": [layer.n_out, layer.n_in], "bias": has_bias}


def _cell_meta(cell: LstmCell, prefix: str, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "cell_scale_log2": int(cell.cell_scale_log2), "cell_clip": int(cell.cell_clip),
        "hidden_multiplier": int(cell.hidden_multiplier), "hidden_shift": int(cell.hidden_shift),
        "input_fc": _linear_meta(cell.input_fc, f"{prefix}.input_fc", tensors),
        "recurrent_fc": _linear_meta(cell.recurrent_fc, f"{prefix}.recurrent_fc", tensors),
    }


def _stack_layer_meta(cell: LstmCell, prefix: str,
                      tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"input": _format_meta(cell.input), "hidden": _format_meta(cell.hidden),
            **_cell_meta(cell, prefix, tensors)}


def _encoder_layer_meta(layer: EncoderLayer, index: int,
                        tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    meta: dict[str, Any] = {"stack": int(layer.stack), "input": _format_meta(layer.cells[0].input),
                            "hidden": _format_meta(layer.hidden)}
    for direction, cell in zip(DIRECTIONS, layer.cells, strict=False):
        meta[direction] = _cell_meta(cell, f"encoder.layer{index}.{direction}", tensors)
    return meta


def _joint_meta(joint: Joint, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "mode": joint.mode,
        "enc_proj": _linear_meta(joint.enc_proj, "joint.enc_proj", tensors),
        "pred_proj": _linear_meta(joint.pred_proj, "joint.pred_proj", tensors),
        "combine_multiplier": int(joint.combine_multiplier),
        "combine_shift": int(joint.combine_shift),
        "hidden": _format_meta(joint.hidden),
        "hidden_multiplier": int(joint.hidden_multiplier),
        "hidden_shift": int(joint.hidden_shift),
        "out": _linear_meta(joint.out, "joint.out", tensors),
        "logit_frac_bits": int(joint.logit_frac_bits),
    }


# --- reading (FORMAT.md §2, §3) -------------------------------------------------------------


def load_model(path: str | Path) -> Model:
    """Read and check the model file at ``path`` (FORMAT.md §4): an RnntModel or an LmModel."""
    return load_model_bytes(read_file(path))


def load_model_bytes(data: bytes) -> Model:
    """Check a model file's bytes (FORMAT.md §4) and return the model they hold."""
    metadata, tensors = read_container(data)
    reader = _Reader(tensors)
    model = reader.model(JsonObject("", metadata, FormatError, "metadata"))
    reader.finish()
    check_model(model)
    return model


class _Reader:
    """Builds a model from the metadata, taking each tensor it names once (FORMAT.md §3)."""

    def __init__(self, tensors: dict[str, RawTensor]) -> None:
        self._tensors = tensors
        self.version = FORMAT_VERSION
        self._taken: set[str] = set()

    def take(self, name: str, dtype: str, shape: tuple[int, ...],
             expected: str = "expected") -> np.ndarray:
        raw = self._tensors.get(name)
        if raw is None:
            raise FormatError(f"missing tensor {name!r}")
        self._taken.add(name)
        if raw.dtype != dtype:
            raise FormatError(f"tensor {name!r} has dtype {raw.dtype}, expected {dtype}")
        if raw.shape != shape:
            raise FormatError(f"tensor {name!r} has shape {dims(raw.shape)}, "
                              f"{expected} {dims(shape)}")
        array = np.frombuffer(raw.data, dtype=NUMPY_DTYPES[dtype]).reshape(shape)
        return array.astype(array.dtype.newbyteorder("="))

    def finish(self) -> None:
        extra = sorted(set(self._tensors) - self._taken)
        if extra:
            raise FormatError(f"unexpected tensor {extra[0]!r}")

    def model(self, top: JsonObject) -> Model:
        top.choice("format", (FORMAT_NAME,))
        version = top.raw("format_version")
        if type(version) is not int or version not in READ_VERSIONS:
            raise FormatError(f"metadata format_version: file has version {short(version)}, "
                              f"this int4rt reads versions "
                              f"{', '.join(map(str, READ_VERSIONS[:-1]))} and "
                              f"{READ_VERSIONS[-1]}")
        self.version = version
        architecture = top.choice("architecture", ("rnnt", "lm"))
        top.string("int4rt_version")
        profile = top.choice("profile", PROFILES)
        rounding = top.choice("rounding", _profile(profile).roundings)
        vocab = read_vocab(top)
        if architecture == "lm":
            lm = top.object("lm")
            layers = self.stack(lm, "lm")
            embedding = self.embedding("lm.embedding", layers[0], len(vocab))
            out = self.linear(lm, "out", "lm.out")
            frac_bits = lm.int("logit_frac_bits", LOGIT_FRAC_BITS_MIN, LOGIT_FRAC_BITS_MAX)
            lm.done()
            model: Model = LmModel(vocab, embedding, layers, out, frac_bits, profile, rounding,
                                   *self.tables())
        else:
            blank_id = top.int("blank_id", 0, len(vocab) - 1)
            frontend = self.frontend(top.object("frontend"))
            encoder = self.encoder(top.object("encoder"))
            predictor_meta = top.object("predictor")
            cells = self.stack(predictor_meta, "predictor")
            predictor = Predictor(self.embedding("predictor.embedding", cells[0], len(vocab)),
                                  cells)
            joint = self.joint(top.object("joint"))
            model = RnntModel(vocab, blank_id, frontend, encoder, predictor, joint, profile,
                              rounding, *self.tables())
        top.done()
        return model

    def frontend(self, fe: JsonObject) -> Frontend:
        rate, n_mels = fe.int("sample_rate", 1000, 192000), fe.int("n_mels", 1, 512)
        frame_length, frame_shift = fe.number("frame_length_ms"), fe.number("frame_shift_ms")
        deltas = fe.int("deltas", 0, 2)
        dims = (n_mels * (1 + deltas),)
        cmvn = ((self.take("frontend.cmvn_mean", "F32", dims),
                 self.take("frontend.cmvn_std", "F32", dims)) if fe.bool("cmvn") else (None, None))
        if fe.has("kind") and self.version < KALDI_FBANK_VERSION:
            fe.fail("kind", f"needs format_version {KALDI_FBANK_VERSION}, the file has "
                            f"{self.version}")
        kaldi_fbank = read_frontend_kind(fe, rate, n_mels, defaults=False)
        fe.done()
        return Frontend(rate, n_mels, frame_length, frame_shift, deltas, *cmvn, kaldi_fbank)

    def encoder(self, enc: JsonObject) -> Encoder:
        layers = []
        for index, meta in enumerate(enc.objects("layers")):
            stack = meta.int("stack", 1, MAX_STACK)
            input_fmt, hidden_fmt = _format(meta, "input"), _format(meta, "hidden")
            cells = tuple(self.cell(meta.object(d), f"encoder.layer{index}.{d}", input_fmt,
                                    hidden_fmt)
                          for d in DIRECTIONS if d == "fwd" or meta.has(d))
            meta.done()
            layers.append(EncoderLayer(cells, stack))
        enc.done()
        return Encoder(layers[0].cells[0].input, tuple(layers))

    def stack(self, parent: JsonObject, name: str) -> tuple[LstmCell, ...]:
        return tuple(self.cell(meta, f"{name}.layer{i}", _format(meta, "input"),
                               _format(meta, "hidden"))
                     for i, meta in enumerate(parent.objects("layers")))

    def cell(self, meta: JsonObject, prefix: str, input_fmt: ActQuant,
             hidden_fmt: ActQuant) -> LstmCell:
        cell = LstmCell(
            input_fc=self.linear(meta, "input_fc", f"{prefix}.input_fc"),
            recurrent_fc=self.linear(meta, "recurrent_fc", f"{prefix}.recurrent_fc"),
            input=input_fmt,
            hidden=hidden_fmt,
            cell_scale_log2=meta.int("cell_scale_log2", -20, 0),
            cell_clip=meta.int("cell_clip", 0, 32767),
            hidden_multiplier=meta.int("hidden_multiplier", 0, INT32_MAX),
            hidden_shift=meta.int("hidden_shift", SHIFT_MIN, SHIFT_MAX),
        )
        meta.done()
        return cell

    def linear(self, parent: JsonObject, key: str, prefix: str) -> QLinear:
        meta = parent.object(key)
        bits = _bits(meta, "weight_bits")
        blocks = self.blocks(meta)
        shape = meta.raw("shape")
        if not isinstance(shape, list) or len(shape) != 2 or not all(
                is_count(d) and 1 <= d <= MAX_DIM for d in shape):
            meta.fail("shape", f"expected [rows, columns], each in [1, {MAX_DIM}]")
        has_bias = meta.bool("bias")
        meta.done()
        rows, cols = shape
        if blocks and rows % blocks:
            meta.fail("blocks", f"{blocks} blocks do not divide the {rows} rows")
        if bits == 4:
            packed = self.take(f"{prefix}.weight", "U8", ((rows * cols + 1) // 2,),
                               f"{rows}x{cols} int4 codes pack to")
            try:
                weight = unpack_int4(packed, rows * cols).reshape(rows, cols)
            except ArithmeticSpecError as error:
                raise FormatError(f"tensor '{prefix}.weight': {error}") from None
        else:
            weight = self.take(f"{prefix}.weight", "I8", (rows, cols), "metadata says")
        bias = (self.take(f"{prefix}.bias", "I32", (rows,), "metadata says") if has_bias
                else np.zeros(rows, np.int32))
        pairs = (blocks or rows,)
        multiplier = self.take(f"{prefix}.multiplier", "I32", pairs, "metadata says")
        shift = self.take(f"{prefix}.shift", "I32", pairs, "metadata says")
        if blocks:  # expanded once, here: the operators see per-row pairs (FORMAT.md §3.3)
            multiplier, shift = (np.repeat(values, rows // blocks) for values in (multiplier,
                                                                                  shift))
        return QLinear(weight, bits, bias, multiplier, shift, blocks)

    def blocks(self, meta: JsonObject) -> int:
        """G of a ``per_gate`` layer (its ``blocks`` key), 0 for ``per_row`` (FORMAT.md §2.4)."""
        granularity = meta.choice("granularity", GRANULARITIES)
        if granularity == "per_row":
            return 0
        if self.version < PER_GATE_VERSION:
            meta.fail("granularity", f"'per_gate' needs format_version {PER_GATE_VERSION}, "
                                     f"the file has {self.version}")
        return meta.int("blocks", 1, MAX_DIM)

    def embedding(self, name: str, first: LstmCell, vocab_size: int) -> np.ndarray:
        return self.take(name, "I8" if first.input.signed else "U8",
                         (vocab_size, first.input_size), "expected [vocabulary, input size]")

    def joint(self, meta: JsonObject) -> Joint:
        joint = Joint(
            mode=meta.choice("mode", JOINT_MODES),
            enc_proj=self.linear(meta, "enc_proj", "joint.enc_proj"),
            pred_proj=self.linear(meta, "pred_proj", "joint.pred_proj"),
            combine_multiplier=meta.int("combine_multiplier", 0, INT32_MAX),
            combine_shift=meta.int("combine_shift", SHIFT_MIN, SHIFT_MAX),
            hidden=_format(meta, "hidden"),
            hidden_multiplier=meta.int("hidden_multiplier", 0, INT32_MAX),
            hidden_shift=meta.int("hidden_shift", SHIFT_MIN, SHIFT_MAX),
            out=self.linear(meta, "out", "joint.out"),
            logit_frac_bits=meta.int("logit_frac_bits", LOGIT_FRAC_BITS_MIN, LOGIT_FRAC_BITS_MAX),
        )
        meta.done()
        return joint

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (self.take("tables.sigmoid", "U16", (256,)),
                self.take("tables.exp2", "I32", (257,)),
                self.take("tables.ln", "I32", (257,)))


def _bits(meta: JsonObject, key: str) -> int:
    bits = meta.int(key, 4, 8)
    if bits not in (4, 8):
        meta.fail(key, f"expected 4 or 8, got {bits}")
    return bits


def _format(parent: JsonObject, key: str) -> ActQuant:
    """An activation format object {bits, signed, zero_point, scale} (FORMAT.md §2.3)."""
    meta = parent.object(key)
    bits = _bits(meta, "bits")
    signed = meta.bool("signed")
    probe = ActQuant(bits, signed, 0, 1.0)
    zero_point = meta.int("zero_point", probe.qmin, probe.qmax)
    scale = meta.number("scale")
    if scale > FLOAT32_MAX or float(np.float32(scale)) != scale:
        meta.fail("scale", f"{scale!r} is not a float32 value")
    meta.done()
    return ActQuant(bits, signed, zero_point, scale)
