"""Accumulator widths of a model's fully connected layers (docs/VERIFICATION.md §5).

For every §7.1 layer (ARITHMETIC.md §7): the static worst case from the actual weights,
``bound = max_n Σ_k |w[n,k]| · max|x − zp| + |bias[n]|`` (never above the §7.2 bound, usually
well below), which bounds every partial sum in any order, so its signed width is safe for
wrapping and saturating accumulators alike; the exact reachable range of the final sums
(``reach``: each x at the end of its range that pushes the sum one way), whose width is
enough for a wrapping accumulator (only the final value matters, §7.1); and the accumulators
observed on given or random features. ``--acc-bits N`` reruns the model with N-bit
accumulators that wrap or saturate and reports which layers overflowed and how the encoder
output codes and log-probabilities change. Observation and emulation run on the NumPy
reference, through :func:`int4rt.ops.gemv.reference.accumulator_hook`.

``int4rt inspect MODEL --accumulators`` (``int4rt.accumulator_command``) prints this report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from int4rt.arith import accumulator_bound, signed_bits
from int4rt.errors import Int4rtError
from int4rt.layers import ActQuant, QLinear
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel
from int4rt.ops.gemv.reference import accumulator_hook
from int4rt.trace import Trace

LABELS = 4  # random label ids fed to the predictor when observing


@dataclass
class LayerAccumulators:
    """One layer's accumulator report; observed fields stay None without a forward pass."""

    name: str
    shape: tuple[int, int]
    weight_bits: int
    input: str
    bound: int
    bits: int
    reach_min: int
    reach_max: int
    reach_bits: int
    generic_bound: int
    generic_bits: int
    observed_min: int | None = None
    observed_max: int | None = None
    observed_bits: int | None = None
    count: int = 0
    overflowed: int | None = None


@dataclass
class AccumulatorReport:
    """Every layer, the model-wide minimum width, and (optionally) observation and emulation."""

    layers: list[LayerAccumulators]
    min_safe_bits: int
    widest_layer: str
    min_wrap_bits: int
    observed_on: str | None = None
    acc_bits: int | None = None
    overflow: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


def input_span(fmt: ActQuant) -> int:
    """``max |x − zp|`` over the codes of ``fmt``."""
    return max(fmt.zero_point - fmt.qmin, fmt.qmax - fmt.zero_point)


def row_bounds(layer: QLinear, fmt: ActQuant) -> np.ndarray:
    """``Σ_k |w[n,k]| · max|x − zp| + |bias[n]|`` per row n, int64."""
    weights = np.abs(layer.weight.astype(np.int64)).sum(axis=1)
    return weights * input_span(fmt) + np.abs(layer.bias.astype(np.int64))


def row_reach(layer: QLinear, fmt: ActQuant) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest final accumulator of each row over all input codes."""
    w = layer.weight.astype(np.int64)
    positive, negative = np.where(w > 0, w, 0).sum(axis=1), np.where(w < 0, -w, 0).sum(axis=1)
    below, above = fmt.zero_point - fmt.qmin, fmt.qmax - fmt.zero_point  # |x − zp| ranges
    bias = layer.bias.astype(np.int64)
    return bias - below * positive - above * negative, bias + above * positive + below * negative


def range_bits(low: int, high: int) -> int:
    """Width of the smallest two's-complement integer holding every value in [low, high]."""
    return max(signed_bits(max(high, 0)), signed_bits(max(-low - 1, 0)))


def static_report(model: RnntModel | LmModel) -> AccumulatorReport:
    """The static bounds of every layer; needs no forward pass."""
    layers = []
    for name, layer, fmt in model.linear_layers():
        bound = int(row_bounds(layer, fmt).max())
        low, high = (int(f(r)) for f, r in zip((np.min, np.max), row_reach(layer, fmt),
                                                strict=True))
        generic = accumulator_bound(layer.n_in, layer.weight_bits, fmt.bits) + int(
            np.abs(layer.bias.astype(np.int64)).max())
        kind = f"{'' if fmt.signed else 'u'}int{fmt.bits} zp {fmt.zero_point}"
        layers.append(LayerAccumulators(
            name, (layer.n_out, layer.n_in), layer.weight_bits, kind, bound, signed_bits(bound),
            low, high, range_bits(low, high), generic, signed_bits(generic)))
    widest = max(layers, key=lambda entry: entry.bits)
    return AccumulatorReport(layers, widest.bits, widest.name,
                             max(entry.reach_bits for entry in layers))


def wrap(acc: np.ndarray, bits: int) -> np.ndarray:
    """Keep the low ``bits`` bits of each accumulator, read as two's complement."""
    half = 1 << (bits - 1)
    return ((acc + half) & ((1 << bits) - 1)) - half


def saturate(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, acc: np.ndarray,
             bits: int) -> np.ndarray:
    """Accumulate bias first, then k = 0 … K−1, clamping every partial sum to ``bits`` bits."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    xs, ws = x.astype(np.int64), weights.astype(np.int64)
    if int((np.abs(xs) @ np.abs(ws).T + np.abs(bias.astype(np.int64))).max(initial=0)) <= hi:
        return acc  # no partial sum can leave the range
    total = np.clip(np.broadcast_to(bias.astype(np.int64), acc.shape), lo, hi)
    for k in range(ws.shape[1]):
        total = np.clip(total + xs[:, k:k + 1] * ws[:, k], lo, hi)
    return total


class _Observer:
    """The accumulator hook: records each layer's accumulators, optionally narrows them."""

    def __init__(self, model: RnntModel, bits: int | None, mode: str) -> None:
        self.names = {id(layer.weight): name for name, layer, _ in model.linear_layers()}
        self.bits, self.mode = bits, mode
        self.low: dict[str, int] = {}
        self.high: dict[str, int] = {}
        self.count: dict[str, int] = {}
        self.changed: dict[str, int] = {}

    def __call__(self, x: np.ndarray, weights: np.ndarray, bias: np.ndarray,
                 acc: np.ndarray) -> np.ndarray:
        name = self.names[id(weights)]
        self.low[name] = min(self.low.get(name, 0), int(acc.min(initial=0)))
        self.high[name] = max(self.high.get(name, 0), int(acc.max(initial=0)))
        self.count[name] = self.count.get(name, 0) + acc.size
        if self.bits is None:
            return acc
        narrow = (wrap(acc, self.bits) if self.mode == "wrap"
                  else saturate(x, weights, bias, acc, self.bits))
        self.changed[name] = self.changed.get(name, 0) + int(np.count_nonzero(narrow != acc))
        return narrow


def _run(model: RnntModel, features: np.ndarray, labels: np.ndarray, observer: _Observer,
         ) -> Trace:
    trace = Trace()
    with accumulator_hook(observer):
        model.lattice(features, labels, backend="numpy", trace=trace)
    return trace


def _output_changes(model: RnntModel, exact: Trace, narrow: Trace) -> dict[str, Any]:
    """How the encoder output codes and the log-probabilities change under narrow accumulators."""
    last = len(model.encoder.layers) - 1
    encoder = [name for name in exact if name.startswith(f"encoder.layer{last}.")
               and name.endswith(".hidden")]
    enc_changed = sum(int(np.count_nonzero(exact[n] != narrow[n])) for n in encoder)
    enc_total = sum(exact[n].size for n in encoder)
    lp, lp_narrow = exact["joint.log_probs"].astype(np.int64), narrow["joint.log_probs"]
    delta = np.abs(lp - lp_narrow)
    first = next((n for n in exact if not np.array_equal(exact[n], narrow[n])), None)
    return {"encoder_codes_changed": enc_changed, "encoder_codes": enc_total,
            "log_probs_changed": int(np.count_nonzero(delta)), "log_probs": int(lp.size),
            "max_log_prob_change_nats": float(delta.max()) / 2.0**model.joint.logit_frac_bits,
            "argmax_changed": int(np.count_nonzero(lp.argmax(1) != lp_narrow.argmax(1))),
            "pairs": int(lp.shape[0]), "first_changed_trace": first}


def observe(model: RnntModel, report: AccumulatorReport, features: np.ndarray, source: str,
            seed: int, bits: int | None, mode: str) -> None:
    """Fill ``report`` with the accumulators of one lattice run and, with ``bits``, emulation."""
    rng = np.random.default_rng(seed)
    ids = np.array([i for i in range(len(model.vocab)) if i != model.blank_id])
    labels = rng.choice(ids, size=LABELS)
    exact = _Observer(model, None, mode)
    exact_trace = _run(model, features, labels, exact)
    report.observed_on = f"{source}, {features.shape[0]} frames, labels {labels.tolist()}"
    for entry in report.layers:
        entry.observed_min, entry.observed_max = exact.low[entry.name], exact.high[entry.name]
        entry.observed_bits = range_bits(entry.observed_min, entry.observed_max)
        entry.count = exact.count[entry.name]
    if bits is None:
        return
    narrow = _Observer(model, bits, mode)
    narrow_trace = _run(model, features, labels, narrow)
    report.acc_bits, report.overflow = bits, mode
    for entry in report.layers:
        entry.overflowed = narrow.changed[entry.name]
    report.outputs = _output_changes(model, exact_trace, narrow_trace)


def read_features(path: str, model: RnntModel) -> np.ndarray:
    """Float features [T, F] from a ``.npy`` file (no pickle)."""
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise Int4rtError(f"cannot read features {path!r}: {error}") from None
    width = model.frontend.feature_dim
    if features.ndim != 2 or features.shape[1] != width or features.shape[0] == 0 \
            or not np.issubdtype(features.dtype, np.floating):
        raise Int4rtError(f"features {path!r} must be float [frames, {width}], got "
                          f"{features.dtype} {list(features.shape)}")
    return features


def random_features(model: RnntModel, frames: int, seed: int) -> np.ndarray:
    """Standard normal float32 features [frames, F] (CMVN-normalized scale)."""
    if frames < 1:
        raise Int4rtError(f"--frames must be >= 1, got {frames}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, model.frontend.feature_dim)).astype(np.float32)


def format_report(report: AccumulatorReport) -> str:
    """The report as text."""
    lines = ["accumulators of every fully connected layer (docs/VERIFICATION.md §5)",
             "  bound = max_n Σ_k |w[n,k]|·max|x − zp| + |bias[n]| (actual weights, any "
             "summation order); reach = exact range of the final sums; §7.2 = "
             "K·2^(wb−1)·(2^ab − 1) + max|bias|; bits = signed width",
             f"  {'layer':<32} {'shape':>10} {'w':>2} {'input':<11} {'bound':>8} {'bits':>4} "
             f"{'reach [min, max]':<20} {'bits':>4} {'§7.2':>8} {'bits':>4}  "
             f"{'observed [min, max]':<20} {'bits':>4}"
             + ("  overflowed" if report.acc_bits else "")]
    for e in report.layers:
        observed = "" if e.observed_min is None else f"[{e.observed_min}, {e.observed_max}]"
        reach = f"[{e.reach_min}, {e.reach_max}]"
        line = (f"  {e.name:<32} {e.shape[0]:>5}x{e.shape[1]:<4} {e.weight_bits:>2} "
                f"{e.input:<11} {e.bound:>8} {e.bits:>4} {reach:<20} {e.reach_bits:>4} "
                f"{e.generic_bound:>8} {e.generic_bits:>4}  {observed:<20} "
                f"{e.observed_bits or '':>4}")
        if report.acc_bits:
            line += f"  {e.overflowed} of {e.count}"
        lines.append(line.rstrip())
    lines.append(f"minimum safe accumulator width for every layer: {report.min_safe_bits} bits "
                 f"(widest: {report.widest_layer}); a wrapping accumulator needs "
                 f"{report.min_wrap_bits} bits (the reach of the final sums)")
    if report.observed_on:
        lines.append(f"observed on {report.observed_on}")
    if report.acc_bits:
        lines += _emulation_lines(report)
    return "\n".join(lines)


def _emulation_lines(report: AccumulatorReport) -> list[str]:
    bits = report.acc_bits
    may = [e.name for e in report.layers if e.bits > bits]
    did = [f"{e.name} ({e.overflowed})" for e in report.layers if e.overflowed]
    out = report.outputs
    return [
        f"with {bits}-bit accumulators ({report.overflow} on overflow):",
        f"  may overflow (static bound): {', '.join(may) or 'none'}",
        f"  overflowed on this input (accumulators changed): {', '.join(did) or 'none'}",
        f"  encoder output codes changed: {out['encoder_codes_changed']} of "
        f"{out['encoder_codes']}",
        f"  log-probabilities changed: {out['log_probs_changed']} of {out['log_probs']} "
        f"(max {out['max_log_prob_change_nats']:.4f} nats); best label changed at "
        f"{out['argmax_changed']} of {out['pairs']} (frame, label) pairs",
        f"  first trace tensor that changed: {out['first_changed_trace'] or 'none'}",
    ]

