"""``int4rt inspect``: what a model file holds, how it is quantized, how much it compresses.

The compression ratio is ``fp32 bytes / file bytes``: every parameter (weights, biases,
embedding entries, CMVN statistics) counted at 4 bytes, against the whole file — header,
packed weights, requantization parameters and tables included (docs/FORMAT.md §5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from int4rt.layers import ActQuant, LstmCell, QLinear
from int4rt.model.container import load_model_bytes
from int4rt.model.framing import RawTensor, read_container, read_file
from int4rt.model.lm import LmModel
from int4rt.model.validation import Model

TABLE_NAMES = ("sigmoid", "exp2", "ln")


def inspect_model(path: str | Path) -> dict[str, Any]:
    """The report of the model file at ``path`` as a JSON-ready dict (FORMAT.md §5)."""
    data = read_file(path)
    model = load_model_bytes(data)
    metadata, tensors = read_container(data)
    layers = [_linear_report(model, name, layer, fmt, tensors) for name, layer, fmt
              in model.linear_layers()]
    embedding_name, embedding, embedding_fmt = _embedding(model)
    parameters = sum(entry["parameters"] for entry in layers) + embedding.size
    if not isinstance(model, LmModel) and model.frontend.cmvn_mean is not None:
        parameters += 2 * model.frontend.feature_dim
    file_bytes = len(data)
    report: dict[str, Any] = {
        "file": str(path),
        "architecture": metadata["architecture"],
        "format_version": metadata["format_version"],
        "int4rt_version": metadata["int4rt_version"],
        "profile": model.profile,
        "rounding": model.rounding,
        "vocab_size": len(model.vocab),
        "parameters": int(parameters),
        "file_bytes": file_bytes,
        "header_bytes": 8 + int.from_bytes(data[:8], "little"),
        "tensors": len(tensors),
        "bytes_by_kind": _bytes_by_kind(tensors),
        "fp32_bytes": 4 * int(parameters),
        "compression_ratio": round(4 * int(parameters) / file_bytes, 4),
        "embedding": {"name": embedding_name, "shape": list(embedding.shape),
                      "format": _format(embedding_fmt)},
        "layers": layers,
        "tables": {name: {"dtype": str(table.dtype), "entries": int(table.size)}
                   for name, table in zip(TABLE_NAMES, (model.sigmoid_table, model.exp2_table,
                                                        model.ln_table), strict=True)},
    }
    report["cells"] = [_cell_report(name, cell) for name, cell in model.lstm_cells()]
    if isinstance(model, LmModel):
        report["logit_frac_bits"] = model.logit_frac_bits
        return report
    report["blank_id"] = model.blank_id
    report["frontend"] = {"kind": model.frontend.kind,
                          "sample_rate": model.frontend.sample_rate,
                          "feature_dim": model.frontend.feature_dim,
                          "stack": model.encoder.layers[0].stack,
                          "cmvn": model.frontend.cmvn_mean is not None}
    report["encoder_layers"] = [
        {"layer": index, "stack": layer.stack, "directions": len(layer.cells),
         "input_size": layer.cells[0].input_size, "hidden_size": layer.cells[0].hidden_size}
        for index, layer in enumerate(model.encoder.layers)]
    joint = model.joint
    report["joint"] = {
        "mode": joint.mode, "size": joint.out.n_in,
        "combine_multiplier": joint.combine_multiplier, "combine_shift": joint.combine_shift,
        "hidden": _format(joint.hidden), "hidden_multiplier": joint.hidden_multiplier,
        "hidden_shift": joint.hidden_shift, "logit_frac_bits": joint.logit_frac_bits}
    return report


def _bytes_by_kind(tensors: dict[str, RawTensor]) -> dict[str, int]:
    """Data-area bytes by what they hold: weights, biases, (M, s) pairs, embedding, tables,
    CMVN (FORMAT.md §3); with the header they add up to the file size.
    """
    kinds = {"weights": 0, "biases": 0, "requant": 0, "embedding": 0, "tables": 0, "cmvn": 0}
    for name, raw in tensors.items():
        part = name.rsplit(".", 1)[-1]
        kind = ("tables" if name.startswith("tables.") else "cmvn" if name.startswith("frontend.")
                else "embedding" if part == "embedding" else "weights" if part == "weight"
                else "biases" if part == "bias" else "requant")
        kinds[kind] += len(raw.data)
    return kinds


def _cell_report(name: str, cell: LstmCell) -> dict[str, Any]:
    """Cell scale 2^p and clip (ARITHMETIC.md §8.1, §8.3), (Mo, so) and formats (§8.4)."""
    scale = 2.0 ** cell.cell_scale_log2
    return {"name": name, "input_size": cell.input_size, "hidden_size": cell.hidden_size,
            "cell_scale_log2": cell.cell_scale_log2, "cell_scale": scale,
            "cell_clip": cell.cell_clip,
            "cell_clip_value": cell.cell_clip * scale if cell.cell_clip else None,
            "hidden_multiplier": cell.hidden_multiplier, "hidden_shift": cell.hidden_shift,
            "input": _format(cell.input), "hidden": _format(cell.hidden)}


def _embedding(model: Model) -> tuple[str, Any, ActQuant]:
    if isinstance(model, LmModel):
        return "lm.embedding", model.embedding, model.input
    return "predictor.embedding", model.predictor.embedding, model.predictor.layers[0].input


def _format(fmt: ActQuant) -> dict[str, Any]:
    return {"bits": fmt.bits, "signed": fmt.signed, "zero_point": fmt.zero_point,
            "scale": fmt.scale}


def _output(model: Model, name: str) -> str:
    if name.endswith("out"):
        bits = model.logit_frac_bits if isinstance(model, LmModel) else model.joint.logit_frac_bits
        return f"int32 logits, scale 2^-{bits}"
    if name.startswith("joint.") and model.joint.mode == "multiplicative":
        return "int16, multiplied then requantized to Q3.12"
    return "int16 Q3.12"


def _linear_report(model: Model, name: str, layer: QLinear, fmt: ActQuant,
                   tensors: dict[str, RawTensor]) -> dict[str, Any]:
    has_bias = f"{name}.bias" in tensors
    stored = {part: len(tensors[f"{name}.{part}"].data)
              for part in ("weight", "bias", "multiplier", "shift") if f"{name}.{part}" in tensors}
    return {
        "name": name,
        "shape": [layer.n_out, layer.n_in],
        "parameters": int(layer.weight.size + (layer.n_out if has_bias else 0)),
        "weight_bits": layer.weight_bits,
        "granularity": layer.granularity,
        "requant_pairs": layer.blocks or layer.n_out,
        "bias": has_bias,
        "stored_bytes": sum(stored.values()),
        "requant_bytes": stored["multiplier"] + stored["shift"],
        "input": _format(fmt),
        "output": _output(model, name),
        "rounding": model.rounding,
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    lines = [
        f"{report['file']}: int4rt model file version {report['format_version']} "
        f"(written by int4rt {report['int4rt_version']})",
        f"  architecture      {report['architecture']}, vocabulary {report['vocab_size']}"
        + (f", blank id {report['blank_id']}" if "blank_id" in report else ""),
        f"  profile/rounding  {report['profile']} / {report['rounding']}",
        f"  parameters        {report['parameters']:,}",
        f"  file bytes        {report['file_bytes']:,} (header {report['header_bytes']:,}, "
        f"{report['tensors']} tensors)",
        "  data bytes        " + ", ".join(f"{kind} {count:,}" for kind, count
                                           in report["bytes_by_kind"].items()),
        f"  fp32 bytes        {report['fp32_bytes']:,}",
        f"  compression       {report['compression_ratio']:.2f}x vs fp32",
    ]
    if "frontend" in report:
        fe = report["frontend"]
        lines.append(f"  frontend          {fe['kind']}, {fe['feature_dim']} features at "
                     f"{fe['sample_rate']} Hz, "
                     f"stack {fe['stack']}, CMVN {'yes' if fe['cmvn'] else 'no'}")
    emb = report["embedding"]
    lines.append(f"  embedding         {emb['name']} {emb['shape'][0]}x{emb['shape'][1]} codes, "
                 f"{_describe(emb['format'])}")
    lines.append("  tables            " + ", ".join(
        f"{name} {t['dtype']}[{t['entries']}]" for name, t in report["tables"].items()))
    lines.append("")
    lines.append(f"  {'layer':<34} {'shape':>11} {'w':>2} {'bias':>4} {'(M, s)':>10} "
                 f"{'bytes':>8}  {'input codes':<31} output")
    for entry in report["layers"]:
        shape = "x".join(map(str, entry["shape"]))
        per = "gate" if entry["granularity"] == "per_gate" else "row"
        pairs = f"{entry['requant_pairs']} {per}"
        lines.append(f"  {entry['name']:<34} {shape:>11} {entry['weight_bits']:>2} "
                     f"{'yes' if entry['bias'] else 'no':>4} {pairs:>10} "
                     f"{entry['stored_bytes']:>8,}  {_describe(entry['input']):<31} "
                     f"{entry['output']}")
    lines.append("  (w: weight bits; (M, s): requantization pairs stored, per row or per gate "
                 "block;")
    lines.append(f"   bytes: weights, bias and pairs; rounding {report['rounding']})")
    lines.append("")
    lines.append(f"  {'LSTM direction':<34} {'cell scale':>10} {'clip':>6}  (Mo, so)")
    for cell in report["cells"]:
        clip = str(cell["cell_clip"]) if cell["cell_clip"] else "none"
        lines.append(f"  {cell['name']:<34} {'2^' + str(cell['cell_scale_log2']):>10} "
                     f"{clip:>6}  ({cell['hidden_multiplier']}, {cell['hidden_shift']})")
    if "encoder_layers" in report:
        lines.append("  encoder stacking  " + ", ".join(
            f"layer{e['layer']} x{e['stack']}" for e in report["encoder_layers"]))
        joint = report["joint"]
        combine = (f", (M_c, s_c) = ({joint['combine_multiplier']}, {joint['combine_shift']})"
                   if joint["mode"] == "multiplicative" else "")
        lines.append(f"  joint             {joint['mode']}{combine}, (M_h, s_h) = "
                     f"({joint['hidden_multiplier']}, {joint['hidden_shift']}), hidden "
                     f"{_describe(joint['hidden'])}, logits 2^-{joint['logit_frac_bits']}")
    return "\n".join(lines)


def _describe(fmt: dict[str, Any]) -> str:
    kind = f"{'' if fmt['signed'] else 'u'}int{fmt['bits']}"
    return f"{kind} zp {fmt['zero_point']} scale {fmt['scale']:.4g}"
