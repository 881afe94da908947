"""Which tensors a model of a configuration needs, under int4rt's reference names.

Reference names follow PyTorch modules (docs/CONVERT.md §1): ``nn.LSTM`` parameters
``{weight,bias}_{ih,hh}_l{k}`` (``_reverse`` for the backward direction; gate rows in the order
i, f, g, o, as int4rt's, ARITHMETIC.md §8.1), ``nn.Linear`` ``weight``/``bias``, ``nn.Embedding``
``weight``. Optional extras: global CMVN statistics, QAT clip values and learned weight scales
(``<weight>_scale``, one float32 per gate block; CONVERT.md §1.3).
:func:`check_tensors` checks a renamed checkpoint against them; :class:`Tensors` hands them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from int4rt.model.config import LmConfig, ModelConfig, RnntConfig, layer_names

from .errors import ConvertError

SCALAR = ()  # QAT clip values: shape [] or [1]
SCALE_SUFFIX = "_scale"  # <weight>_scale: learned weight scales, one per gate block (§1.3)
LSTM_GATES = 4  # row blocks i, f, g, o of an LSTM weight (ARITHMETIC.md §8.1)


@dataclass(frozen=True)
class Spec:
    """The shape a tensor must have and whether the model needs it."""

    shape: tuple[int, ...]
    required: bool


def lstm_names(prefix: str, layer: int, reverse: bool) -> dict[str, str]:
    """Reference names of one ``nn.LSTM`` layer/direction: w_ih, w_hh, b_ih, b_hh."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {part: f"{prefix}.{part}{suffix}"
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def _lstm_specs(prefix: str, layer: int, reverse: bool, inputs: int,
                hidden: int) -> dict[str, Spec]:
    names = lstm_names(prefix, layer, reverse)
    return {names["weight_ih"]: Spec((4 * hidden, inputs), True),
            names["weight_hh"]: Spec((4 * hidden, hidden), True),
            names["bias_ih"]: Spec((4 * hidden,), False),
            names["bias_hh"]: Spec((4 * hidden,), False),
            names["weight_ih"] + SCALE_SUFFIX: Spec((LSTM_GATES,), False),
            names["weight_hh"] + SCALE_SUFFIX: Spec((LSTM_GATES,), False)}


def _linear_specs(prefix: str, n_out: int, n_in: int) -> dict[str, Spec]:
    return {f"{prefix}.weight": Spec((n_out, n_in), True), f"{prefix}.bias": Spec((n_out,), False),
            f"{prefix}.weight{SCALE_SUFFIX}": Spec((1,), False)}


def activation_layers(config: ModelConfig) -> list[str]:
    """Layer names whose output codes have a format (FORMAT.md §6.2): QAT clips attach here."""
    return [name for name, keys in layer_names(config).items() if "activation_bits" in keys]


def lstm_layers(config: ModelConfig) -> list[str]:
    """Names of the LSTM layers (a cell clip may attach to each)."""
    if isinstance(config, LmConfig):
        return [f"lm.layer{i}" for i in range(config.num_layers)]
    return ([f"encoder.layer{i}" for i in range(config.encoder.num_layers)]
            + [f"predictor.layer{i}" for i in range(config.predictor.num_layers)])


def expected_tensors(config: ModelConfig) -> dict[str, Spec]:
    """Every reference name a checkpoint of ``config`` may hold, with its shape."""
    specs: dict[str, Spec] = {}
    vocab = len(config.vocab)
    if isinstance(config, RnntConfig):
        enc, pred, joint = config.encoder, config.predictor, config.joint
        width = config.frontend.feature_dim
        for layer, stack in enumerate(enc.stack):
            for reverse in (False, True) if enc.bidirectional else (False,):
                specs.update(_lstm_specs("encoder.lstm", layer, reverse, width * stack,
                                         enc.hidden_size))
            width = enc.hidden_size * (2 if enc.bidirectional else 1)
        specs["predictor.embedding.weight"] = Spec((vocab, pred.embedding_size), True)
        for layer in range(pred.num_layers):
            specs.update(_lstm_specs("predictor.lstm", layer, False,
                                     pred.embedding_size if layer == 0 else pred.hidden_size,
                                     pred.hidden_size))
        specs.update(_linear_specs("joint.enc", joint.size, width))
        specs.update(_linear_specs("joint.pred", joint.size, pred.hidden_size))
        specs.update(_linear_specs("joint.out", vocab, joint.size))
        if config.frontend.cmvn:
            dims = (config.frontend.feature_dim,)
            specs["frontend.cmvn_mean"] = Spec(dims, False)
            specs["frontend.cmvn_std"] = Spec(dims, False)
    else:
        specs["embedding.weight"] = Spec((vocab, config.embedding_size), True)
        for layer in range(config.num_layers):
            specs.update(_lstm_specs("lstm", layer, False,
                                     config.embedding_size if layer == 0 else config.hidden_size,
                                     config.hidden_size))
        specs.update(_linear_specs("out", vocab, config.hidden_size))
    for layer in activation_layers(config):
        specs[f"{layer}.act_clip_low"] = Spec(SCALAR, False)
        specs[f"{layer}.act_clip_high"] = Spec(SCALAR, False)
    for layer in lstm_layers(config):
        specs[f"{layer}.cell_clip"] = Spec(SCALAR, False)
    return specs


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


class Tensors:
    """A checkpoint's tensors under reference names, checked against a configuration.

    Construction raises one :class:`ConvertError` for the first problem, in this order: a
    name the model does not have, a missing required tensor, a shape mismatch, a non-finite
    value, a learned weight scale that is not positive. Each message names the tensor (and its
    checkpoint name when a mapping renamed it).
    """

    def __init__(self, renamed: dict[str, tuple[str, np.ndarray]], config: ModelConfig) -> None:
        specs = expected_tensors(config)
        self._tensors = {name: value for name, (_, value) in renamed.items()}
        self._sources = {name: source for name, (source, _) in renamed.items()}
        unknown = [name for name in renamed if name not in specs]
        if unknown:
            name = unknown[0]
            raise ConvertError(
                f"unknown tensor {self.describe(name)}: a {config.architecture} model of this "
                f"config has no such parameter ({len(unknown)} unknown in all; reference names "
                "are listed in docs/CONVERT.md §1.1); rename it with a mapping file (--mapping) "
                "or list it under 'ignore' there")
        missing = [name for name, spec in specs.items() if spec.required and name not in renamed]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise ConvertError(f"missing tensor {missing[0]!r}{more}: the checkpoint has no "
                               "tensor of that (reference) name")
        for name, value in self._tensors.items():
            want = specs[name].shape
            ok = value.shape in ((), (1,)) if want == SCALAR else value.shape == want
            if not ok:
                expected = "a scalar" if want == SCALAR else _shape(want)
                raise ConvertError(f"tensor {self.describe(name)} has shape {_shape(value.shape)} "
                                   f"in the checkpoint; the config expects {expected}")
        for name, value in self._tensors.items():
            bad = int(np.count_nonzero(~np.isfinite(value)))
            if bad:
                raise ConvertError(f"tensor {self.describe(name)} has {bad} non-finite values "
                                   "(NaN or inf)")
        for name, value in self._tensors.items():
            if name.endswith(SCALE_SUFFIX) and not np.all(np.float32(value) > 0):
                raise ConvertError(f"tensor {self.describe(name)} has entries <= 0 as float32 "
                                   f"({value.tolist()}): a learned weight scale must be positive "
                                   "(CONVERT.md §1.3)")

    def describe(self, name: str) -> str:
        """``'name'``, plus the checkpoint name when a mapping renamed it."""
        source = self._sources.get(name, name)
        return repr(name) if source == name else f"{name!r} (checkpoint name {source!r})"

    def get(self, name: str) -> np.ndarray | None:
        """The tensor, or None when the (optional) tensor is absent."""
        return self._tensors.get(name)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._tensors[name]

    def scalar(self, name: str) -> float | None:
        """A scalar tensor's value, or None when absent."""
        value = self._tensors.get(name)
        return None if value is None else float(value.reshape(-1)[0])

    def element_count(self) -> int:
        """Float parameters in the checkpoint (what it would take at fp32)."""
        return sum(value.size for value in self._tensors.values())
