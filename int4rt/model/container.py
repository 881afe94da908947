"""Model files: ``save_model`` and ``load_model`` for RNN-T and LM models (docs/FORMAT.md).

A model file is a safetensors file (FORMAT.md §1) whose ``__metadata__`` holds one JSON
document describing every layer's quantization (FORMAT.md §2); its tensors (FORMAT.md §3)
hold weight codes (int4 packed two per byte, ARITHMETIC.md §5), per-row integer
requantization parameters, embedding codes, the arithmetic tables and CMVN statistics. Files
are written with ``safetensors.numpy`` so other tools can read them, and read back by the
strict parser below, which checks every byte before trusting it (FORMAT.md §4): any problem
raises one ``FormatError`` naming the field. Nothing is ever unpickled.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import save_file

from int4rt import __version__
from int4rt.arith import check_sigmoid_table, get_profile, unpack_int4
from int4rt.errors import ArithmeticSpecError, FormatError, Int4rtError
from int4rt.layers import (
    JOINT_MODES,
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
from int4rt.model.config import MAX_STACK, JsonObject, read_vocab, strict_json
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import Frontend, RnntModel
from int4rt.ops.formats import INT32_MAX
from int4rt.ops.log_softmax.tables import check_exp2_table, check_ln_table, exp2_table, ln_table
from int4rt.ops.requantize.reference import SHIFT_MAX, SHIFT_MIN

FORMAT_NAME = "int4rt"
FORMAT_VERSION = 1
METADATA_KEY = "int4rt"
HEADER_LIMIT = 100_000_000  # bytes of JSON header accepted (safetensors' limit; FORMAT.md §1)
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_DIM = INT32_MAX  # largest logical dimension of a weight matrix (FORMAT.md §2.4)
DIRECTIONS = ("fwd", "bwd")

# safetensors dtype names and their element sizes (FORMAT.md §1)
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
}
NUMPY_DTYPES = {  # the dtypes int4rt reads (FORMAT.md §3), little-endian on disk
    "U8": np.dtype("<u1"), "I8": np.dtype("<i1"), "U16": np.dtype("<u2"),
    "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
}

Model = RnntModel | LmModel
_profile = functools.cache(get_profile)  # get_profile rebuilds the int4rt table on each call


# --- FORMAT.md §1: the safetensors framing -----------------------------------------------


@dataclass(frozen=True)
class RawTensor:
    """One tensor of a checked safetensors file: dtype name, shape and its bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: memoryview


def read_container(data: bytes) -> tuple[dict[str, Any], dict[str, RawTensor]]:
    """The ``int4rt`` metadata object and the raw tensors of a model file's bytes.

    Checks the framing only (FORMAT.md §1): header length, JSON (FORMAT.md §2.1), the tensor
    table (dtype names, shapes, offsets that tile the data area, alignment); the model itself
    is checked later.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    if size < 8:
        raise FormatError(f"file is {size} bytes, too short for the 8-byte header length")
    length = int.from_bytes(view[:8], "little")
    if length > HEADER_LIMIT:
        raise FormatError(f"header length {length} exceeds the limit of {HEADER_LIMIT} bytes")
    if 8 + length > size:
        raise FormatError(f"header length {length} runs past the end of the file "
                          f"({size} bytes)")
    if length == 0 or length % 8:
        raise FormatError(f"header length {length} is not a positive multiple of 8")
    try:
        text = bytes(view[8:8 + length]).decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("header is not UTF-8 text") from None
    if not text.startswith("{") or not text.rstrip(" ").endswith("}"):
        raise FormatError("header must be a JSON object padded with trailing spaces only")
    header = strict_json(text, "header", FormatError)
    if not isinstance(header, dict):
        raise FormatError("header must be a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or list(metadata) != [METADATA_KEY] \
            or not isinstance(metadata[METADATA_KEY], str):
        raise FormatError(f"header __metadata__ must hold exactly one entry {METADATA_KEY!r} "
                          "whose value is a JSON string")
    buffer = view[8 + length:]
    tensors = {name: _tensor_entry(name, entry, buffer) for name, entry in header.items()}
    _check_tiling(tensors, len(buffer))
    meta = strict_json(metadata[METADATA_KEY], "metadata", FormatError)
    if not isinstance(meta, dict):
        raise FormatError("metadata must be a JSON object")
    return meta, {name: tensor for name, (tensor, _) in tensors.items()}


def _tensor_entry(name: str, entry: object,
                  buffer: memoryview) -> tuple[RawTensor, tuple[int, int]]:
    where = f"header entry {name!r}"
    if not name:
        raise FormatError("header has a tensor with an empty name")
    if not isinstance(entry, dict) or sorted(entry) != ["data_offsets", "dtype", "shape"]:
        raise FormatError(f"{where}: expected exactly the keys dtype, shape, data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise FormatError(f"{where}: unknown dtype {_short(dtype)}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(_is_count(d) for d in shape):
        raise FormatError(f"{where}: shape must be a list of at most 8 non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets)) \
            or not offsets[0] <= offsets[1] <= len(buffer):
        raise FormatError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end "
                          f"<= {len(buffer)} (the data size)")
    begin, end = offsets
    itemsize = DTYPE_SIZES[dtype]
    if end - begin != math.prod(shape) * itemsize:
        raise FormatError(f"{where}: shape {_dims(shape)} of {dtype} needs "
                          f"{math.prod(shape) * itemsize} bytes, data_offsets span {end - begin}")
    if begin % itemsize:
        raise FormatError(f"{where}: data offset {begin} is not a multiple of the {dtype} "
                          f"element size {itemsize}")
    return RawTensor(dtype, tuple(shape), buffer[begin:end]), (begin, end)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tiling(tensors: dict[str, tuple[RawTensor, tuple[int, int]]], size: int) -> None:
    """The tensors' byte ranges tile the data area: no gap, no overlap (FORMAT.md §1)."""
    cursor = 0
    for name, (_, (begin, end)) in sorted(tensors.items(), key=lambda item: item[1][1]):
        if begin != cursor:
            problem = "overlaps the tensor before it" if begin < cursor else "leaves a gap"
            raise FormatError(f"tensor {name!r} starts at data byte {begin}, expected {cursor}: "
                              f"it {problem}")
        cursor = end
    if cursor != size:
        raise FormatError(f"{size - cursor} bytes after the last tensor belong to no tensor")


# --- writing (FORMAT.md §2, §3) -------------------------------------------------------------


def save_model(model: Model, path: str | Path) -> None:
    """Check ``model`` (FORMAT.md §4) and write it to ``path`` as a model file."""
    check_model(model)
    metadata, tensors = _serialize(model)
    target = Path(path)
    if target.is_dir() or not target.parent.is_dir():
        raise Int4rtError(f"cannot write model file {str(target)!r}: "
                          + ("it is a directory" if target.is_dir() else
                             f"no directory {str(target.parent)!r}"))
    try:
        save_file(tensors, os.fspath(path),
                  metadata={METADATA_KEY: json.dumps(metadata, separators=(",", ":"))})
    except (OSError, SafetensorError) as error:
        raise Int4rtError(f"cannot write model file {os.fspath(path)!r}: {error}") from None


def _serialize(model: Model) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    tensors: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
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
                            "cmvn": fe.cmvn_mean is not None}
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


def _format_meta(fmt: ActQuant) -> dict[str, Any]:
    return {"bits": int(fmt.bits), "signed": bool(fmt.signed),
            "zero_point": int(fmt.zero_point), "scale": float(fmt.scale)}


def _linear_meta(layer: QLinear, prefix: str, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    has_bias = bool(layer.bias.any())
    tensors[f"{prefix}.weight"] = layer.packed if layer.weight_bits == 4 else layer.weight
    if has_bias:
        tensors[f"{prefix}.bias"] = layer.bias
    tensors[f"{prefix}.multiplier"] = layer.multiplier
    tensors[f"{prefix}.shift"] = layer.shift
    return {"weight_bits": int(layer.weight_bits), "granularity": "per_row",
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


def read_file(path: str | Path) -> bytes:
    """The bytes of the file at ``path``; a ``FormatError`` saying why it cannot be read."""
    try:
        with open(os.fspath(path), "rb") as handle:
            return handle.read()
    except TypeError:
        raise FormatError(f"model path must be a string or path, got {type(path).__name__}") \
            from None
    except OSError as error:
        raise FormatError(f"cannot read model file {os.fsdecode(path)!r}: "
                          f"{error.strerror or error}") from None


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
            raise FormatError(f"tensor {name!r} has shape {_dims(raw.shape)}, "
                              f"{expected} {_dims(shape)}")
        array = np.frombuffer(raw.data, dtype=NUMPY_DTYPES[dtype]).reshape(shape)
        return array.astype(array.dtype.newbyteorder("="))

    def finish(self) -> None:
        extra = sorted(set(self._tensors) - self._taken)
        if extra:
            raise FormatError(f"unexpected tensor {extra[0]!r}")

    def model(self, top: JsonObject) -> Model:
        top.choice("format", (FORMAT_NAME,))
        version = top.raw("format_version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise FormatError(f"metadata format_version: file has version {_short(version)}, "
                              f"this int4rt reads version {FORMAT_VERSION}")
        architecture = top.choice("architecture", ("rnnt", "lm"))
        top.string("int4rt_version")
        profile = top.choice("profile", ("int4rt", "tflm"))
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
        fe.done()
        return Frontend(rate, n_mels, frame_length, frame_shift, deltas, *cmvn)

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
        meta.choice("granularity", ("per_row",))
        shape = meta.raw("shape")
        if not isinstance(shape, list) or len(shape) != 2 or not all(
                _is_count(d) and 1 <= d <= MAX_DIM for d in shape):
            meta.fail("shape", f"expected [rows, columns], each in [1, {MAX_DIM}]")
        has_bias = meta.bool("bias")
        meta.done()
        rows, cols = shape
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
        return QLinear(weight, bits, bias,
                       self.take(f"{prefix}.multiplier", "I32", (rows,), "metadata says"),
                       self.take(f"{prefix}.shift", "I32", (rows,), "metadata says"))

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


# --- model checks (FORMAT.md §4) ------------------------------------------------------------


def check_model(model: object) -> None:
    """Raise ``FormatError`` unless ``model`` is a consistent RNN-T or LM (FORMAT.md §4)."""
    if not isinstance(model, (RnntModel, LmModel)):
        raise FormatError(f"expected an RnntModel or LmModel, got {type(model).__name__}")
    _check_vocab(model.vocab)
    try:
        if isinstance(model, LmModel):
            model.validate("lm")
        else:
            _check_rnnt(model)
        _check_profile(model)
    except ArithmeticSpecError as error:
        raise FormatError(str(error)) from None


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise FormatError(message)


def linear_layers(model: Model) -> Iterator[tuple[str, QLinear, ActQuant]]:
    """Every fully connected layer of ``model``: (name, layer, format of its input codes)."""
    def cell_layers(prefix: str, cell: LstmCell) -> Iterator[tuple[str, QLinear, ActQuant]]:
        yield f"{prefix}.input_fc", cell.input_fc, cell.input
        yield f"{prefix}.recurrent_fc", cell.recurrent_fc, cell.hidden

    if isinstance(model, LmModel):
        for index, cell in enumerate(model.layers):
            yield from cell_layers(f"lm.layer{index}", cell)
        yield "lm.out", model.out, model.output
        return
    for index, layer in enumerate(model.encoder.layers):
        for direction, cell in zip(DIRECTIONS, layer.cells, strict=False):
            yield from cell_layers(f"encoder.layer{index}.{direction}", cell)
    for index, cell in enumerate(model.predictor.layers):
        yield from cell_layers(f"predictor.layer{index}", cell)
    yield "joint.enc_proj", model.joint.enc_proj, model.encoder.output
    yield "joint.pred_proj", model.joint.pred_proj, model.predictor.output
    yield "joint.out", model.joint.out, model.joint.hidden


def _check_profile(model: Model) -> None:
    """Bit widths, rounding and tables the profile allows (ARITHMETIC.md §6.2, §8; §4)."""
    profile = _profile(model.profile)
    _need(model.rounding in profile.roundings,
          f"rounding {model.rounding!r} not allowed by profile {model.profile!r}")
    for name, layer, fmt in linear_layers(model):
        _need(layer.weight_bits in profile.weight_bits,
              f"{name}: {layer.weight_bits}-bit weights not allowed by profile "
              f"{model.profile!r}")
        _need(fmt.bits in profile.activation_bits and (fmt.signed or model.profile != "tflm"),
              f"{name}: {'' if fmt.signed else 'un'}signed {fmt.bits}-bit input activations "
              f"not allowed by profile {model.profile!r}")
    for name, table, check, want in zip(
            ("tables.sigmoid", "tables.exp2", "tables.ln"),
            (model.sigmoid_table, model.exp2_table, model.ln_table),
            (check_sigmoid_table, check_exp2_table, check_ln_table),
            profile_tables(model.profile), strict=True):
        try:
            check(table)
        except ArithmeticSpecError as error:
            raise FormatError(f"{name}: {error}") from None
        differ = np.flatnonzero(table != want)
        _need(not differ.size, f"{name}: entry {differ[0] if differ.size else 0} differs from "
                               f"the table of profile {model.profile!r}")


def _check_vocab(vocab: object) -> None:
    _need(isinstance(vocab, tuple) and len(vocab) >= 2
          and all(isinstance(token, str) and token for token in vocab)
          and len(set(vocab)) == len(vocab),
          "vocab must be a tuple of at least 2 distinct non-empty strings")


@functools.cache
def profile_tables(profile: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sigmoid, EXP2 and LN tables a ``profile`` model stores (read-only; FORMAT.md §3.5)."""
    tables = (_profile(profile).table.copy(), exp2_table(), ln_table())
    for table in tables:
        table.setflags(write=False)
    return tables


def _check_rnnt(model: RnntModel) -> None:
    _need(0 <= model.blank_id < len(model.vocab),
          f"blank_id {model.blank_id} outside the vocabulary [0, {len(model.vocab)})")
    _check_frontend(model.frontend)
    encoder = model.encoder
    _need(len(encoder.layers) > 0, "encoder: needs at least one layer")
    width, fmt, source = model.frontend.feature_dim, encoder.input, "encoder.input"
    for index, layer in enumerate(encoder.layers):
        name = f"encoder.layer{index}"
        _need(len(layer.cells) in (1, 2), f"{name}: needs 1 or 2 directions")
        _need(1 <= layer.stack <= MAX_STACK, f"{name}.stack {layer.stack} outside "
                                             f"[1, {MAX_STACK}]")
        for direction, cell in zip(DIRECTIONS, layer.cells, strict=False):
            cell.validate(f"{name}.{direction}")
            _need(cell.input == fmt, f"{name}.{direction}.input: format differs from {source}")
            _need(cell.hidden == layer.hidden and cell.hidden_size == layer.cells[0].hidden_size,
                  f"{name}.{direction}: hidden format and size must match the fwd direction")
            _need(cell.input_size == width * layer.stack,
                  f"{name}.{direction}.input_fc: {cell.input_size} inputs, expected "
                  f"{width} x stack {layer.stack} = {width * layer.stack}")
        width, fmt, source = layer.output_size, layer.hidden, f"{name}.hidden"
    predictor = model.predictor
    model.predictor_stack.validate("predictor")
    predictor.validate("predictor")
    _need(predictor.embedding.shape[0] == len(model.vocab),
          f"predictor.embedding: {predictor.embedding.shape[0]} rows, vocabulary has "
          f"{len(model.vocab)} entries")
    _check_joint(model)


def _check_frontend(fe: Frontend) -> None:
    _need(fe.feature_dim > 0, "frontend: feature dimension must be positive")
    if fe.cmvn_mean is None and fe.cmvn_std is None:
        return
    for name, stat in (("cmvn_mean", fe.cmvn_mean), ("cmvn_std", fe.cmvn_std)):
        _need(isinstance(stat, np.ndarray) and stat.dtype == np.float32
              and stat.shape == (fe.feature_dim,),
              f"frontend.{name} must be float32 [{fe.feature_dim}]")
        _need(bool(np.all(np.isfinite(stat))), f"frontend.{name}: non-finite entry")
    _need(bool(np.all(fe.cmvn_std > 0)), "frontend.cmvn_std: entries must be positive")


def _check_joint(model: RnntModel) -> None:
    """The joint's parameters (``Joint.validate``) and how it connects (ARITHMETIC.md §9)."""
    joint = model.joint
    joint.validate("joint", model.encoder.output, model.predictor.output)
    for name, proj, width in (
            ("enc_proj", joint.enc_proj, model.encoder.layers[-1].output_size),
            ("pred_proj", joint.pred_proj, model.predictor.layers[-1].hidden_size)):
        _need(proj.n_in == width, f"joint.{name}: {proj.n_in} inputs, expected {width}")
    if joint.mode == "additive":
        _need((joint.combine_multiplier, joint.combine_shift) == (0, 0),
              "joint.combine: must be (0, 0) for an additive joint")
    _need(joint.out.n_out == len(model.vocab),
          f"joint.out: {joint.out.n_out} rows, vocabulary has {len(model.vocab)} entries")


def _dims(shape: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
