"""Layer parameters as golden tensors and JSON scalars, and back (docs/VERIFICATION.md §3).

Weights appear twice: as int8-held codes [N, K] and, for 4-bit layers, as the packed bytes a
weight memory holds (ARITHMETIC.md §5, FORMAT.md §3.2). Per-row biases, multipliers and
shifts are int32 [N] (FORMAT.md §3.3). The derived (M, s) pairs of the cell update and the
tanh input scaling of the cell state (ARITHMETIC.md §8.3, §8.4) are listed for convenience.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from int4rt.arith import pack_int4, tanh_input_scaling
from int4rt.golden.store import GoldenSet, Tensor
from int4rt.layers import ActQuant, LstmCell, QLinear
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel


def format_json(fmt: ActQuant) -> dict[str, Any]:
    """An activation format as FORMAT.md §2.3 writes it."""
    return {"bits": fmt.bits, "signed": fmt.signed, "zero_point": fmt.zero_point,
            "scale": float(fmt.scale)}


def linear_tensors(prefix: str, layer: QLinear, bias: bool = True) -> list[Tensor]:
    """``{prefix}.weight`` codes, ``.weight_packed`` (4-bit), ``.bias``, ``.multiplier``,
    ``.shift`` of one layer."""
    tensors = [Tensor(f"{prefix}.weight", "param", layer.weight, ("n", "k"),
                      f"int{layer.weight_bits} weight codes held in int8")]
    if layer.weight_bits == 4:
        tensors.append(Tensor(f"{prefix}.weight_packed", "param", pack_int4(layer.weight),
                              ("byte",), "codes 2j (bits 3..0) and 2j+1 (bits 7..4) of the "
                              "flattened [N, K] codes in byte j (ARITHMETIC.md §5)"))
    parts = ("bias", "multiplier", "shift") if bias else ("multiplier", "shift")
    return tensors + [Tensor(f"{prefix}.{part}", "param", getattr(layer, part), ("n",))
                      for part in parts]


def cell_tensors(prefix: str, cell: LstmCell) -> list[Tensor]:
    """The tensors of one LSTM direction (the recurrent FC has no bias, FORMAT.md §2.5)."""
    return (linear_tensors(f"{prefix}input_fc", cell.input_fc)
            + linear_tensors(f"{prefix}recurrent_fc", cell.recurrent_fc, bias=False))


def cell_scalars(cell: LstmCell) -> dict[str, Any]:
    """The scalars of one LSTM direction, with the derived pairs of §8.3 and §8.4."""
    return {
        "input": format_json(cell.input), "hidden": format_json(cell.hidden),
        "input_fc_weight_bits": cell.input_fc.weight_bits,
        "recurrent_fc_weight_bits": cell.recurrent_fc.weight_bits,
        "cell_scale_log2": cell.cell_scale_log2, "cell_clip": cell.cell_clip,
        "hidden_multiplier": cell.hidden_multiplier, "hidden_shift": cell.hidden_shift,
        "derived": {"forget_requant": list(cell.forget_requant),
                    "input_requant": list(cell.input_requant),
                    "tanh_cell_scaling": list(tanh_input_scaling(cell.cell_scale_log2))},
    }


def cell_from_set(gset: GoldenSet, scalars: dict[str, Any], prefix: str = "") -> LstmCell:
    """Rebuild the LSTM direction stored by :func:`cell_tensors` and :func:`cell_scalars`."""
    def linear(name: str, bits: int) -> QLinear:
        n = gset[f"{prefix}{name}.weight"].shape[0]
        bias = (gset[f"{prefix}{name}.bias"] if f"{prefix}{name}.bias" in names
                else np.zeros(n, dtype=np.int32))
        return QLinear(gset[f"{prefix}{name}.weight"], bits, bias,
                       gset[f"{prefix}{name}.multiplier"], gset[f"{prefix}{name}.shift"])

    names = {t.name for t in gset.tensors}
    cell = LstmCell(linear("input_fc", scalars["input_fc_weight_bits"]),
                    linear("recurrent_fc", scalars["recurrent_fc_weight_bits"]),
                    ActQuant(**scalars["input"]), ActQuant(**scalars["hidden"]),
                    scalars["cell_scale_log2"], scalars["cell_clip"],
                    scalars["hidden_multiplier"], scalars["hidden_shift"])
    cell.validate(gset.name)
    return cell


def model_tensors(model: RnntModel | LmModel) -> list[Tensor]:
    """Every integer parameter of a model: FC layers, embedding codes, the three tables."""
    tensors = []
    for name, layer, _ in model.linear_layers():
        tensors += linear_tensors(name, layer, bias=not name.endswith("recurrent_fc"))
    if isinstance(model, LmModel):
        tensors.append(Tensor("lm.embedding_table", "param", model.embedding, ("token", "e")))
    else:
        tensors.append(Tensor("predictor.embedding_table", "param", model.predictor.embedding,
                              ("token", "e"), "row v: the input codes of token v"))
    return tensors + [Tensor(f"tables.{name}", "table", table, ("k",))
                      for name, table in (("sigmoid", model.sigmoid_table),
                                          ("exp2", model.exp2_table), ("ln", model.ln_table))]


def model_cells(model: RnntModel | LmModel) -> dict[str, dict[str, Any]]:
    """The scalars of every LSTM direction of a model, by trace prefix."""
    if isinstance(model, LmModel):
        return {f"lm.layer{i}": cell_scalars(cell) for i, cell in enumerate(model.layers)}
    cells = {f"encoder.layer{i}.{d}": cell_scalars(cell)
             for i, layer in enumerate(model.encoder.layers)
             for d, cell in zip(("fwd", "bwd"), layer.cells, strict=False)}
    cells.update({f"predictor.layer{i}": cell_scalars(cell)
                  for i, cell in enumerate(model.predictor.layers)})
    return cells
