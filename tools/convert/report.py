"""The conversion report: per-layer SQNR of weights and activations, sizes, every parameter.

Weights: the float weight against codes × the row's float32 scale. Activations: the integer
model run on calibration utterances (``RnntModel.lattice`` with a ``Trace``, ARITHMETIC.md
§8.7; the LM through the same operators), each traced tensor dequantized and compared with the
float model's value of the same name. Errors propagate through the layers, so an activation's
SQNR measures the whole integer path up to it. SQNR = 10·log10(Σ x² / Σ (x − x̂)²) over every
evaluated value; ``null`` when the two agree exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from int4rt import __version__
from int4rt import trace_names as names
from int4rt.layers import ActQuant, LstmCell
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel
from int4rt.trace import Trace

from .build import BuildInfo
from .calibration import Utterance
from .errors import ConvertError
from .float_model import FloatLm, FloatRnnt
from .quantizers import sqnr_db

REPORT_VERSION = 1
Model = RnntModel | LmModel


@dataclass
class Accumulator:
    """Σ x² and Σ (x − x̂)² of one tensor over the evaluated utterances."""

    signal: float = 0.0
    noise: float = 0.0

    def add(self, reference: np.ndarray, approximation: np.ndarray) -> None:
        """Add one utterance's values."""
        reference = np.asarray(reference, dtype=np.float64)
        self.signal += float(np.sum(reference**2))
        self.noise += float(np.sum((reference - approximation) ** 2))

    @property
    def sqnr_db(self) -> float | None:
        """The SQNR in dB; None when the noise is zero."""
        if self.noise == 0.0:
            return None
        return 10.0 * math.log10(self.signal / self.noise) if self.signal > 0 else -math.inf


@dataclass
class Evaluation:
    """Activation SQNR accumulators by trace name, and how many utterances fed them."""

    tensors: dict[str, Accumulator] = field(default_factory=dict)
    utterances: int = 0

    def add(self, name: str, reference: np.ndarray, approximation: np.ndarray) -> None:
        """Accumulate one tensor."""
        self.tensors.setdefault(name, Accumulator()).add(reference, approximation)


def _codes(fmt: ActQuant, codes: np.ndarray) -> np.ndarray:
    return (codes.astype(np.float64) - fmt.zero_point) * np.float64(fmt.scale)


def _cell_dequantizers(prefix: str, cell: LstmCell) -> dict[str, Any]:
    return {names.name(prefix, "hidden"): lambda q: _codes(cell.hidden, q),
            names.name(prefix, "cell"): lambda q: q * 2.0**cell.cell_scale_log2}


def _dequantizers(model: Model, info: BuildInfo) -> dict[str, Any]:
    """Trace name → function from its integers to float values (ARITHMETIC.md §8.7, §9)."""
    out: dict[str, Any] = {}
    for prefix, cell in model.lstm_cells():
        out.update(_cell_dequantizers(prefix, cell))
    if isinstance(model, LmModel):
        out[names.embedding(names.LM)] = lambda q: _codes(model.input, q)
        frac = 2.0**-model.logit_frac_bits
        out[names.LM_LOGITS] = out[names.LM_LOG_PROBS] = lambda q: q * frac
        return out
    out[names.ENCODER_INPUT] = lambda q: _codes(model.encoder.input, q)
    out[names.embedding(names.PREDICTOR)] = lambda q: _codes(model.predictor.layers[0].input, q)
    joint = model.joint
    for projection in (names.JOINT_ENC_PROJ, names.JOINT_PRED_PROJ):
        scale = info.projection_scales.get(projection, (2.0**-12, ""))[0]
        out[projection] = lambda q, s=scale: q * s
    pre, tanh, hidden, logits = (names.name(names.JOINT, key) for key in names.JOINT_RECORDS)
    out[pre] = lambda q: q * 2.0**-12
    out[tanh] = lambda q: q * 2.0**-15
    out[hidden] = lambda q: _codes(joint.hidden, q)
    frac = 2.0**-joint.logit_frac_bits
    out[logits] = out[names.JOINT_LOG_PROBS] = lambda q: q * frac
    return out


def evaluate(model: Model, float_model: FloatRnnt | FloatLm, info: BuildInfo,
             utterances: list[Utterance], labels: list[list[int]]) -> Evaluation:
    """Activation SQNRs of ``model`` against ``float_model`` on ``utterances``."""
    result = Evaluation()
    dequantize = _dequantizers(model, info)
    for utt, ids in zip(utterances, labels, strict=True):
        floats: dict[str, np.ndarray] = {}
        trace = Trace()
        if isinstance(model, LmModel):
            assert isinstance(float_model, FloatLm)
            float_model.log_probs(ids, floats.__setitem__)
            model.sequence(np.array([0, *ids]), trace=trace)
        else:
            assert isinstance(float_model, FloatRnnt)
            enc = float_model.encode(utt.features, floats.__setitem__)
            float_model.joint(enc, float_model.predict(ids, floats.__setitem__),
                              floats.__setitem__)
            model.lattice(utt.features, ids, trace=trace)
            floats[names.name(names.JOINT, "hidden")] = floats[names.name(names.JOINT, "tanh")]
            last = len(model.encoder.layers) - 1
            hidden = [names.name(names.encoder_cell(last, d), "hidden")
                      for d in range(len(model.encoder.layers[-1].cells))]
            result.add(names.ENCODER_OUTPUT, np.concatenate([floats[n] for n in hidden], axis=1),
                       np.concatenate([dequantize[n](trace[n]) for n in hidden], axis=1))
        for name, values in trace.items():
            if name in dequantize and name in floats:
                result.add(name, floats[name], dequantize[name](values))
        result.utterances += 1
    return result


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 3)


def _format(fmt: ActQuant) -> dict[str, Any]:
    return {"bits": fmt.bits, "signed": fmt.signed, "zero_point": fmt.zero_point,
            "scale": fmt.scale}


def build_report(model: Model, info: BuildInfo, evaluation: Evaluation | None,
                 context: dict[str, Any]) -> dict[str, Any]:
    """The report as a JSON-ready dict; ``context`` carries inputs, options, sizes, calibration."""
    layers = []
    for name, layer, fmt in model.linear_layers():
        linear = info.linears[name]
        dequantized = layer.weight.astype(np.float64) * linear.scales.astype(np.float64)[:, None]
        layers.append({
            "name": name, "shape": [layer.n_out, layer.n_in], "weight_bits": layer.weight_bits,
            "bias": bool(layer.bias.any()), "bias_rows_rescaled": linear.bias_rows_raised,
            "granularity": layer.granularity, "weight_scale_source": linear.scale_source,
            "input": _format(fmt),
            "weight_sqnr_db": _number(sqnr_db(linear.weight, dequantized)),
            "weight_scales": [float(s) for s in linear.scales],
            "multiplier": layer.multiplier.tolist(), "shift": layer.shift.tolist(),
        })
    cells = []
    for name, cell in model.lstm_cells():
        facts = info.cells[name]
        cells.append({
            "name": name, "cell_scale_log2": cell.cell_scale_log2, "cell_clip": cell.cell_clip,
            "cell_scale_source": facts.scale_source, "float_cell_clip": facts.float_clip,
            "observed_max_abs_cell": facts.observed_max_abs,
            "hidden_multiplier": cell.hidden_multiplier, "hidden_shift": cell.hidden_shift,
        })
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION, "int4rt_version": __version__,
        "architecture": "lm" if isinstance(model, LmModel) else "rnnt",
        "profile": model.profile, "rounding": model.rounding, **context,
        "formats": {name: {**_format(item.format), "range": [item.low, item.high],
                           "source": item.source} for name, item in info.formats.items()},
        "layers": layers, "cells": cells,
    }
    if isinstance(model, LmModel):
        report["logit_frac_bits"] = model.logit_frac_bits
    else:
        joint = model.joint
        report["joint"] = {
            "mode": joint.mode,
            "projection_scales": {name: {"scale": scale, "source": source}
                                  for name, (scale, source) in info.projection_scales.items()},
            "combine_multiplier": joint.combine_multiplier, "combine_shift": joint.combine_shift,
            "hidden_multiplier": joint.hidden_multiplier, "hidden_shift": joint.hidden_shift,
            "logit_frac_bits": joint.logit_frac_bits,
        }
    activations = {} if evaluation is None else {
        name: _number(acc.sqnr_db) for name, acc in evaluation.tensors.items()}
    report["activations"] = [{"name": name, "sqnr_db": value}
                             for name, value in activations.items()]
    final = names.LM_LOG_PROBS if isinstance(model, LmModel) else names.JOINT_LOG_PROBS
    summary: dict[str, Any] = {
        "evaluated_utterances": 0 if evaluation is None else evaluation.utterances}
    if not isinstance(model, LmModel):
        summary["encoder_output_sqnr_db"] = activations.get(names.ENCODER_OUTPUT)
    summary["log_probs_sqnr_db"] = activations.get(final)
    summary["min_weight_sqnr_db"] = min((entry["weight_sqnr_db"] for entry in layers
                                         if entry["weight_sqnr_db"] is not None), default=None)
    report["summary"] = summary
    return report


def _db(value: float | None) -> str:
    return "exact" if value is None else f"{value:6.2f} dB"


def format_table(report: dict[str, Any]) -> str:
    """The report as a table for a terminal."""
    sizes, summary = report["sizes"], report["summary"]
    lines = [
        f"converted {report['inputs']['checkpoint']} -> {report['output']} "
        f"({report['architecture']}, profile {report['profile']}, rounding {report['rounding']})",
        f"  size: {sizes['file_bytes']:,} bytes vs {sizes['fp32_bytes']:,} fp32 bytes "
        f"({sizes['compression_ratio']:.2f}x)",
        f"  weights: {report['options']['weight_scale']} scales, {report['options']['granularity']}"
        f"; activations: {report['options']['activation_range']} ranges",
        "",
        f"  {'layer':<34} {'shape':>10} {'w':>2}  {'input codes':<14} {'weight SQNR':<11}  "
        "scales",
    ]
    for entry in report["layers"]:
        fmt = entry["input"]
        kind = f"{'' if fmt['signed'] else 'u'}int{fmt['bits']} zp {fmt['zero_point']}"
        lines.append(f"  {entry['name']:<34} {'x'.join(map(str, entry['shape'])):>10} "
                     f"{entry['weight_bits']:>2}  {kind:<14} {_db(entry['weight_sqnr_db']):<11}  "
                     f"{entry['granularity']}, {entry['weight_scale_source']}")
    if report["activations"]:
        lines += ["", f"  {'activation (integer vs float model)':<49} SQNR"]
        lines += [f"  {entry['name']:<49} {_db(entry['sqnr_db'])}"
                  for entry in report["activations"]]
        lines.append(f"  (on {summary['evaluated_utterances']} calibration utterances)")
    else:
        lines.append("  no calibration data: activation SQNR not measured")
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> None:
    """The report as indented JSON."""
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def check_plot_available() -> None:
    """Raise unless matplotlib can be imported (``--plot``)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConvertError("--plot needs matplotlib, which is not installed: "
                           "pip install 'int4rt[plot]'") from None


def write_plot(report: dict[str, Any], path: Path) -> None:
    """A PNG bar chart of per-layer weight and activation SQNR."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [(entry["name"], entry["weight_sqnr_db"], "weights") for entry in report["layers"]]
    rows += [(entry["name"], entry["sqnr_db"], "activations") for entry in report["activations"]]
    rows = [row for row in rows if row[1] is not None]
    figure, axes = plt.subplots(figsize=(8, 0.25 * len(rows) + 1.5))
    colors = {"weights": "tab:blue", "activations": "tab:orange"}
    axes.barh(range(len(rows)), [row[1] for row in rows], color=[colors[r[2]] for r in rows])
    axes.set_yticks(range(len(rows)), [row[0] for row in rows], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("SQNR (dB); blue: weights, orange: activations")
    axes.set_title(f"int4rt convert: {Path(report['output']).name}")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
