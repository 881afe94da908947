"""Validation of whole models, RNN-T and LM, in one place (docs/FORMAT.md §4).

``check_model`` runs on every model read or written: shapes, the chain of activation formats
from layer to layer, every parameter range (``int4rt.layers``), the vocabulary, and what the
arithmetic profile allows (ARITHMETIC.md §11). Any problem is one ``FormatError`` naming the
field.
"""

from __future__ import annotations

import functools

import numpy as np

from int4rt.errors import ArithmeticSpecError, FormatError
from int4rt.layers import (
    LOGIT_FRAC_BITS_MAX,
    LOGIT_FRAC_BITS_MIN,
    check_embedding,
)
from int4rt.model.config import MAX_STACK
from int4rt.model.frontend_kinds import kaldi_fbank_problem
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import Frontend, RnntModel
from int4rt.ops.activations.tables import check_sigmoid_table
from int4rt.ops.log_softmax.tables import check_exp2_table, check_ln_table, exp2_table, ln_table
from int4rt.ops.profiles import get_profile
from int4rt.trace_names import DIRECTIONS

Model = RnntModel | LmModel
_profile = functools.cache(get_profile)  # get_profile rebuilds the int4rt table on each call


def check_model(model: object) -> None:
    """Raise ``FormatError`` unless ``model`` is a consistent RNN-T or LM (FORMAT.md §4)."""
    if not isinstance(model, (RnntModel, LmModel)):
        raise FormatError(f"expected an RnntModel or LmModel, got {type(model).__name__}")
    _check_vocab(model.vocab)
    try:
        if isinstance(model, LmModel):
            _check_lm(model)
        else:
            _check_rnnt(model)
        _check_profile(model)
    except ArithmeticSpecError as error:
        raise FormatError(str(error)) from None


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise FormatError(message)


def _check_profile(model: Model) -> None:
    """Bit widths, rounding and tables the profile allows (ARITHMETIC.md §6.2, §8; §4)."""
    profile = _profile(model.profile)
    _need(model.rounding in profile.roundings,
          f"rounding {model.rounding!r} not allowed by profile {model.profile!r}")
    for name, layer, fmt in model.linear_layers():
        _need(layer.weight_bits in profile.weight_bits,
              f"{name}: {layer.weight_bits}-bit weights not allowed by profile "
              f"{model.profile!r}")
        _need(fmt.bits in profile.activation_bits
              and (fmt.signed or not profile.signed_activations_only),
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
    if fe.kaldi_fbank is not None:
        problem = kaldi_fbank_problem(fe.kaldi_fbank, fe.sample_rate, fe.n_mels)
        _need(problem is None, f"frontend.{problem[0]}: {problem[1]}" if problem else "")
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


def _check_lm(model: LmModel) -> None:
    """The LM's stack, embedding and output layer (ARITHMETIC.md §7, §8)."""
    model.stack.validate("lm")
    check_embedding("lm.embedding", model.embedding, model.layers[0])
    _need(model.embedding.shape[0] == len(model.vocab),
          f"lm.embedding: {model.embedding.shape[0]} rows, vocabulary has "
          f"{len(model.vocab)} entries")
    _need(model.out.n_in == model.layers[-1].hidden_size and model.out.n_out == len(model.vocab),
          f"lm.out: shape ({model.out.n_out}, {model.out.n_in}), expected "
          f"({len(model.vocab)}, {model.layers[-1].hidden_size})")
    model.out.validate("lm.out", model.output.bits)
    _need(LOGIT_FRAC_BITS_MIN <= model.logit_frac_bits <= LOGIT_FRAC_BITS_MAX,
          f"lm.logit_frac_bits {model.logit_frac_bits} outside "
          f"[{LOGIT_FRAC_BITS_MIN}, {LOGIT_FRAC_BITS_MAX}]")
