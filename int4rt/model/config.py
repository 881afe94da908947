"""Model configurations (``configs/*.json``): architecture sizes and quantization settings.

A configuration says what to build (``int4rt convert``); the model file then records every
resulting integer parameter (docs/FORMAT.md §6 describes the configuration schema). Any bad
key, type or size raises one :class:`Int4rtError` naming the key. The shipped configurations
are package data (``int4rt/configs/``, identical to the checkout's ``configs/``), so
``--config tiny`` works from an installed wheel.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from int4rt.arith import get_profile
from int4rt.errors import Int4rtError
from int4rt.layers import LOGIT_FRAC_BITS_MAX, LOGIT_FRAC_BITS_MIN
from int4rt.model.frontend_kinds import KaldiFbankOptions, read_frontend_kind
from int4rt.options import JOINT_MODES, KALDI_FBANK, LOG_MEL, PROFILES, FrontendKind

MAX_SIZE = 16384  # largest hidden/embedding/joint width a configuration may ask for
MAX_LAYERS = 64
MAX_STACK = 16


@dataclass(frozen=True)
class Override:
    """Per-layer bit widths replacing the ``quantization`` defaults (None: keep the default)."""

    weight_bits: int | None = None
    activation_bits: int | None = None


@dataclass(frozen=True)
class QuantConfig:
    """Profile, rounding, default bit widths and the per-layer overrides (FORMAT.md §6)."""

    profile: str
    rounding: str
    weight_bits: int
    activation_bits: int
    activation_signed: bool
    cell_scale_log2: int
    cell_clip: int
    overrides: Mapping[str, Override] = field(default_factory=dict)

    def weight_bits_for(self, layer: str) -> int:
        """Weight bits of ``layer`` (a name of FORMAT.md §6.2)."""
        bits = self.overrides.get(layer, Override()).weight_bits
        return self.weight_bits if bits is None else bits

    def activation_bits_for(self, layer: str) -> int:
        """Bits of the activation codes ``layer`` produces."""
        bits = self.overrides.get(layer, Override()).activation_bits
        return self.activation_bits if bits is None else bits


@dataclass(frozen=True)
class FrontendConfig:
    """Feature extraction: log-Mel filterbank, deltas, CMVN (FORMAT.md §2.6)."""

    sample_rate: int
    n_mels: int
    frame_length_ms: float
    frame_shift_ms: float
    deltas: int
    cmvn: bool
    kaldi_fbank: KaldiFbankOptions | None = None  # None: the log-mel front end

    @property
    def kind(self) -> FrontendKind:
        """``log-mel`` or ``kaldi-fbank``."""
        return LOG_MEL if self.kaldi_fbank is None else KALDI_FBANK

    @property
    def feature_dim(self) -> int:
        """Features per frame before stacking."""
        return self.n_mels * (1 + self.deltas)


@dataclass(frozen=True)
class EncoderConfig:
    """(Bi-)LSTM encoder: ``stack[l]`` frames are concatenated before layer l."""

    num_layers: int
    hidden_size: int
    bidirectional: bool
    stack: tuple[int, ...]


@dataclass(frozen=True)
class PredictorConfig:
    """Prediction network: embedding then unidirectional LSTM layers."""

    embedding_size: int
    num_layers: int
    hidden_size: int


@dataclass(frozen=True)
class JointConfig:
    """Joint network: projection width, combination mode, logit scale 2^-logit_frac_bits."""

    size: int
    mode: str
    logit_frac_bits: int


@dataclass(frozen=True)
class RnntConfig:
    """What ``random_model`` (and later the converter) builds for architecture "rnnt"."""

    vocab: tuple[str, ...]
    blank_id: int
    frontend: FrontendConfig
    encoder: EncoderConfig
    predictor: PredictorConfig
    joint: JointConfig
    quantization: QuantConfig

    @property
    def architecture(self) -> str:
        """The architecture name: ``"rnnt"``."""
        return "rnnt"


@dataclass(frozen=True)
class LmConfig:
    """A character LSTM LM over ``vocab`` (architecture "lm")."""

    vocab: tuple[str, ...]
    embedding_size: int
    num_layers: int
    hidden_size: int
    logit_frac_bits: int
    quantization: QuantConfig

    @property
    def architecture(self) -> str:
        """The architecture name: ``"lm"``."""
        return "lm"


ModelConfig = RnntConfig | LmConfig


class JsonObject:
    """A JSON object read key by key, named ``label name`` in errors (e.g. ``config joint``).

    Every accessor checks type and range and raises ``error`` naming the dotted key; ``done``
    rejects keys nobody asked for. Used for configurations and model metadata (FORMAT.md §2).
    """

    def __init__(self, name: str, value: object, error: type[Int4rtError] = Int4rtError,
                 label: str = "config") -> None:
        self.name, self._error, self._label = name, error, label
        if not isinstance(value, dict):
            raise error(f"{label} {name or '(top level)'}: expected an object, "
                        f"got {_kind(value)}")
        self._value: dict[str, Any] = value
        self._seen: set[str] = set()

    def fail(self, key: str, message: str) -> NoReturn:
        """Raise the error for ``key``."""
        raise self._error(f"{self._label} {self.key(key)}: {message}")

    def key(self, key: str) -> str:
        """The dotted name of ``key``."""
        return f"{self.name}.{key}" if self.name else key

    def keys(self) -> list[str]:
        """The object's keys, in file order."""
        return list(self._value)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present."""
        return key in self._value

    def raw(self, key: str, default: Any = ...) -> Any:
        """The value of ``key`` unchecked; ``default`` if absent (required without one)."""
        self._seen.add(key)
        if key not in self._value:
            if default is ...:
                self.fail(key, "missing")
            return default
        return self._value[key]

    def int(self, key: str, lo: int, hi: int, default: Any = ...) -> int:
        """An integer (not a boolean) in [lo, hi]."""
        value = self.raw(key, default)
        if value is not default and (isinstance(value, bool) or not isinstance(value, int)
                                     or not lo <= value <= hi):
            self.fail(key, f"expected an integer in [{lo}, {hi}], got {_show(value)}")
        return value

    def number(self, key: str) -> float:
        """A finite positive number (integer or float)."""
        value = self.raw(key)
        number = math.nan
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError):  # an int beyond the float range
                number = float(value)
        if not 0 < number < math.inf:
            self.fail(key, f"expected a finite positive number, got {_show(value)}")
        return number

    def bool(self, key: str) -> bool:
        """true or false."""
        value = self.raw(key)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def string(self, key: str) -> str:
        """A non-empty string."""
        value = self.raw(key)
        if not isinstance(value, str) or not value:
            self.fail(key, f"expected a non-empty string, got {_show(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        """One of the strings ``choices``."""
        value = self.raw(key)
        if not isinstance(value, str) or value not in choices:
            self.fail(key, f"expected one of {', '.join(map(repr, choices))}, "
                           f"got {_show(value)}")
        return value

    def object(self, key: str) -> JsonObject:
        """The object under ``key``."""
        return JsonObject(self.key(key), self.raw(key), self._error, self._label)

    def objects(self, key: str) -> list[JsonObject]:
        """The non-empty list of objects under ``key``."""
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            self.fail(key, f"expected a non-empty list, got {_show(value)}")
        return [JsonObject(f"{self.key(key)}[{i}]", item, self._error, self._label)
                for i, item in enumerate(value)]

    def done(self) -> None:
        """Reject keys that were never read."""
        extra = [key for key in self._value if key not in self._seen]
        if extra:
            self.fail(extra[0], "unknown key")


def _show(value: object) -> str:
    if isinstance(value, (dict, list)):
        return f"{_kind(value)} of {len(value)} entries"
    text = repr(value) if isinstance(value, float) else json.dumps(value)
    return text if len(text) <= 40 else f"{_kind(value)} ({text[:30]}...)"


def strict_json(text: str, what: str, error: type[Int4rtError] = Int4rtError) -> Any:
    """Parse JSON rejecting repeated keys and NaN/Infinity (FORMAT.md §2.1); else ``error``."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError) as failure:
        raise error(f"{what} is not valid JSON: {failure}") from None


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else "null")


BUILTIN_CONFIGS = ("paper", "tiny", "lm-paper", "lm-tiny")  # int4rt/configs/{name}.json


def builtin_config_text(name: str) -> str:
    """The JSON text of the shipped configuration ``name`` (one of :data:`BUILTIN_CONFIGS`)."""
    if name not in BUILTIN_CONFIGS:
        raise Int4rtError(f"unknown built-in config {name!r}; expected one of "
                          f"{', '.join(BUILTIN_CONFIGS)}")
    return (resources.files("int4rt") / "configs" / f"{name}.json").read_text(encoding="utf-8")


def load_config(path: str | Path) -> ModelConfig:
    """Read and check a configuration file, or a built-in one by name (FORMAT.md §6)."""
    if str(path) in BUILTIN_CONFIGS and not Path(path).exists():
        return parse_config(strict_json(builtin_config_text(str(path)), f"config {path!r}"))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise Int4rtError(f"cannot read config {str(path)!r}: {reason}") from None
    return parse_config(strict_json(text, f"config {str(path)!r}"))


def parse_config(data: object) -> ModelConfig:
    """Check a configuration's JSON value and return its typed form (FORMAT.md §6)."""
    top = JsonObject("", data)
    architecture = top.choice("architecture", ("rnnt", "lm"))
    vocab = read_vocab(top)
    quant = _quantization(top.object("quantization"))
    if architecture == "rnnt":
        config: ModelConfig = _rnnt(top, vocab, quant)
    else:
        lm = top.object("lm")
        config = LmConfig(
            vocab=vocab,
            embedding_size=lm.int("embedding_size", 1, MAX_SIZE),
            num_layers=lm.int("num_layers", 1, MAX_LAYERS),
            hidden_size=lm.int("hidden_size", 1, MAX_SIZE),
            logit_frac_bits=lm.int("logit_frac_bits", LOGIT_FRAC_BITS_MIN, LOGIT_FRAC_BITS_MAX),
            quantization=quant,
        )
        lm.done()
    top.done()
    _check_overrides(config)
    return config


def read_vocab(top: JsonObject) -> tuple[str, ...]:
    """``vocab``: a list of at least 2 distinct non-empty strings (FORMAT.md §2.2)."""
    value = top.raw("vocab")
    if not isinstance(value, list) or len(value) < 2:
        top.fail("vocab", "expected a list of at least 2 strings")
    seen: set[str] = set()
    for index, token in enumerate(value):
        if not isinstance(token, str) or not token:
            top.fail(f"vocab[{index}]", f"expected a non-empty string, got {_show(token)}")
        if token in seen:
            top.fail(f"vocab[{index}]", f"{token!r} appears twice")
        seen.add(token)
    return tuple(value)


def _quantization(section: JsonObject) -> QuantConfig:
    profile_name = section.choice("profile", PROFILES)
    profile = get_profile(profile_name)
    rounding = section.choice("rounding", profile.roundings)
    weight_bits = _bits(section, "weight_bits", profile.weight_bits, profile_name)
    activation_bits = _bits(section, "activation_bits", profile.activation_bits, profile_name)
    signed = section.bool("activation_signed")
    if profile.signed_activations_only and not signed:
        section.fail("activation_signed",
                     f"the {profile_name!r} profile needs signed (int8) activations")
    overrides_section = section.object("overrides")
    overrides = {}
    for layer in overrides_section.keys():
        entry = overrides_section.object(layer)
        overrides[layer] = Override(
            _bits(entry, "weight_bits", profile.weight_bits, profile_name, None),
            _bits(entry, "activation_bits", profile.activation_bits, profile_name, None))
        entry.done()
    overrides_section.done()
    quant = QuantConfig(
        profile=profile_name,
        rounding=rounding,
        weight_bits=weight_bits,
        activation_bits=activation_bits,
        activation_signed=signed,
        cell_scale_log2=section.int("cell_scale_log2", -20, 0),
        cell_clip=section.int("cell_clip", 0, 32767),
        overrides=MappingProxyType(overrides),
    )
    section.done()
    return quant


def _bits(section: JsonObject, key: str, allowed: tuple[int, ...], profile: str,
          default: Any = ...) -> Any:
    bits = section.int(key, 4, 8, default)
    if bits is not None and bits not in allowed:
        section.fail(key, f"{bits} bits not allowed by profile {profile!r} "
                          f"(allowed: {', '.join(map(str, allowed))})")
    return bits


def _rnnt(top: JsonObject, vocab: tuple[str, ...], quant: QuantConfig) -> RnntConfig:
    blank_id = top.int("blank_id", 0, len(vocab) - 1)
    fe = top.object("frontend")
    sample_rate, n_mels = fe.int("sample_rate", 1000, 192000), fe.int("n_mels", 1, 512)
    frontend = FrontendConfig(
        sample_rate=sample_rate,
        n_mels=n_mels,
        frame_length_ms=fe.number("frame_length_ms"),
        frame_shift_ms=fe.number("frame_shift_ms"),
        deltas=fe.int("deltas", 0, 2),
        cmvn=fe.bool("cmvn"),
        kaldi_fbank=read_frontend_kind(fe, sample_rate, n_mels, defaults=True),
    )
    fe.done()
    enc = top.object("encoder")
    num_layers = enc.int("num_layers", 1, MAX_LAYERS)
    hidden_size = enc.int("hidden_size", 1, MAX_SIZE)
    bidirectional = enc.bool("bidirectional")
    stack = enc.raw("stack")
    if not isinstance(stack, list) or len(stack) != num_layers or any(
            isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= MAX_STACK
            for s in stack):
        enc.fail("stack", f"expected a list of {num_layers} integers in [1, {MAX_STACK}] "
                          f"(one per layer), got {_show(stack)}")
    encoder = EncoderConfig(num_layers, hidden_size, bidirectional, tuple(stack))
    enc.done()
    pred = top.object("predictor")
    predictor = PredictorConfig(
        embedding_size=pred.int("embedding_size", 1, MAX_SIZE),
        num_layers=pred.int("num_layers", 1, MAX_LAYERS),
        hidden_size=pred.int("hidden_size", 1, MAX_SIZE),
    )
    pred.done()
    jt = top.object("joint")
    joint = JointConfig(
        size=jt.int("size", 1, MAX_SIZE),
        mode=jt.choice("mode", JOINT_MODES),
        logit_frac_bits=jt.int("logit_frac_bits", LOGIT_FRAC_BITS_MIN, LOGIT_FRAC_BITS_MAX),
    )
    jt.done()
    return RnntConfig(vocab, blank_id, frontend, encoder, predictor, joint, quant)


def layer_names(config: ModelConfig) -> dict[str, tuple[str, ...]]:
    """Names an override may use, with the keys each accepts (FORMAT.md §6.2)."""
    both = ("weight_bits", "activation_bits")
    if isinstance(config, LmConfig):
        names = {"lm.embedding": ("activation_bits",), "lm.out": ("weight_bits",)}
        names.update({f"lm.layer{i}": both for i in range(config.num_layers)})
        return names
    names = {"encoder.input": ("activation_bits",), "predictor.embedding": ("activation_bits",),
             "joint": both, "joint.out": ("weight_bits",)}
    names.update({f"encoder.layer{i}": both for i in range(config.encoder.num_layers)})
    names.update({f"predictor.layer{i}": both for i in range(config.predictor.num_layers)})
    return names


def _check_overrides(config: ModelConfig) -> None:
    names = layer_names(config)
    for layer, override in config.quantization.overrides.items():
        key = f"config quantization.overrides.{layer}"
        if layer not in names:
            raise Int4rtError(f"{key}: no such layer; expected one of "
                              f"{', '.join(sorted(names))}")
        for field_name in ("weight_bits", "activation_bits"):
            if getattr(override, field_name) is not None and field_name not in names[layer]:
                raise Int4rtError(f"{key}.{field_name}: this layer has no "
                                  f"{field_name.split('_')[0]}s to set")
