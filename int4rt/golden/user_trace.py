"""``int4rt trace MODEL (--features F.npy | --audio A.wav) --out DIR``: every integer of one
run of the user's own model on the user's own input, as test-bench files
(docs/VERIFICATION.md §8).

The layout follows ``int4rt golden export`` (VERIFICATION.md §3) so that the same readers,
``compare_dump.py`` and the cocotb bench of ``hardware/`` consume it unchanged:

- ``tables/`` the model's sigmoid, EXP2 and LN tables (``lm.*`` for an LM's own tables);
- ``params/`` weight codes, packed int4 weight memories, biases, multipliers, shifts,
  embedding codes of the model (and of the LM under ``params/lm.*``);
- ``inputs/`` the features (``.npy`` as given; ``.hex`` as IEEE-754 bits when float32) and the
  label ids; ``intermediates/``, ``outputs/`` every traced tensor (ARITHMETIC.md §8.7) as
  ``$readmemh`` hex, and the same tensor as ``npy/<name>.npy``;
- ``steps/<tensor>/t0003.hex`` per-step files (unless ``--no-steps``);
- ``manifest.json``: every file (tensor, role, dtype, shape, width, signedness, encoding,
  ARITHMETIC.md section), the per-direction LSTM scalars, the joint and feature constants,
  and ``lstm_directions``: for every LSTM direction the tensors that form its input, its
  parameter prefix and whether it runs backward, so a bench can rebuild each layer's run.

Memory stays bounded by the model's own working set: each tensor goes to disk when it is
recorded and is not kept, and the joint runs over chunks of frames appended to its files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from int4rt import __version__
from int4rt import trace_names as names
from int4rt.errors import Int4rtError
from int4rt.golden.hexfile import encoding_of, hex_lines, write_hex
from int4rt.golden.layer_tensors import cell_scalars, format_json, model_cells, model_tensors
from int4rt.golden.store import Tensor
from int4rt.golden.traces import trace_axes
from int4rt.options import BACKENDS, BackendName
from int4rt.trace import Trace

TRACE_FORMAT_VERSION = 1
ROLE_DIRS = {"table": "tables", "param": "params", "input": "inputs",
             "intermediate": "intermediates", "output": "outputs"}
OUTPUTS = (names.JOINT_LOG_PROBS, names.LM_LOG_PROBS)
STEP_AXES = ("t", "u")
DEFAULT_CHUNK_FRAMES = 64
SECTIONS = (  # (name suffix or exact name, ARITHMETIC.md section)
    ("encoder.input", "§8.6"), (".stacked", "§8.5"), ("predictor.embedding", "§8.6"),
    ("lm.embedding", "§8.6"), (".input_proj", "§8.2"), (".gate_pre", "§8.2"),
    (".gate.i", "§8.3, §6.3"), (".gate.f", "§8.3, §6.3"), (".gate.g", "§8.3, §6.4"),
    (".gate.o", "§8.3, §6.3"), (".cell", "§8.3"), (".hidden", "§8.4"),
    ("joint.enc_proj", "§9.1"), ("joint.pred_proj", "§9.1"), ("joint.pre", "§9.2"),
    ("joint.tanh", "§9.2, §6.4"), ("joint.hidden", "§9.2"), ("joint.logits", "§9.2"),
    ("lm.logits", "§7.1"), (".log_probs", "§10"), (".weight", "§7.1"),
    (".weight_packed", "§5"), (".bias", "§7.1"), (".multiplier", "§7.1, §3"),
    (".shift", "§7.1, §3"), (".embedding_table", "§8.6"), ("sigmoid", "§6.2"),
    ("exp2", "§10.1"), ("ln", "§10.1"), ("labels", "§8.6"), ("features", "§8.6"))
HEX_FORMAT = ("$readmemh text: one value per line as exactly width_bits / 4 lower-case hex "
              "digits, no prefix; signed types in two's complement of width_bits; float32 as "
              "its IEEE-754 bit pattern; the first line is a // comment")
ELEMENT_ORDER = ("row-major (C order): the last index varies fastest; line i (comments "
                 "excluded) holds flat element i")


def section_of(name: str) -> str:
    """The ARITHMETIC.md section that defines the tensor called ``name``."""
    for key, section in SECTIONS:
        if name == key or name.endswith(key):
            return section
    raise KeyError(f"no ARITHMETIC.md section known for {name!r}")


def _axes(name: str, ndim: int) -> tuple[str, ...]:
    if name.startswith(f"{names.LM}."):
        return ("u", "E" if name == names.embedding(names.LM) else "width")[:ndim]
    return trace_axes(name)


class DiskTrace(Trace):
    """A :class:`Trace` that writes each tensor to ``out`` when it is recorded and keeps
    only its manifest entry (bounded memory for long inputs)."""

    def __init__(self, out: Path, steps: bool) -> None:
        super().__init__()
        self.out, self.steps = out, steps
        self.files: list[dict[str, Any]] = []
        self._rows: dict[str, int] = {}
        self._names: set[str] = set()

    def record(self, name: str, tensor: np.ndarray) -> None:
        """Write ``tensor`` as ``npy/<name>.npy`` and hex (whole, and per step)."""
        if name in self._names:
            raise KeyError(f"trace name {name!r} recorded twice")
        self._names.add(name)
        value = np.ascontiguousarray(tensor)
        np.save(self.out / "npy" / f"{name}.npy", value, allow_pickle=False)
        self.write(name, value, "output" if name in OUTPUTS else "intermediate",
                   _axes(name, value.ndim), npy=True)

    def record_rows(self, name: str, rows: np.ndarray, total_rows: int) -> None:
        """Append ``rows`` to tensor ``name`` of ``total_rows`` rows (chunked joint)."""
        rows = np.ascontiguousarray(rows)
        shape = (total_rows, *rows.shape[1:])
        role = "output" if name in OUTPUTS else "intermediate"
        relative = f"{ROLE_DIRS[role]}/{name}.hex"
        start = self._rows.get(name, 0)
        if start == 0:
            if name in self._names:
                raise KeyError(f"trace name {name!r} recorded twice")
            self._names.add(name)
            np.lib.format.open_memmap(self.out / "npy" / f"{name}.npy", mode="w+",
                                      dtype=rows.dtype, shape=shape).flush()
            (self.out / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.out / relative).write_text(f"// {_comment(name, rows.dtype, shape)}\n",
                                             encoding="ascii")
            self.files.append(_entry(relative, Tensor(name, role, np.empty((0,), rows.dtype),
                                                      _axes(name, rows.ndim)),
                                     shape, int(np.prod(shape)), npy=True))
        memmap = np.load(self.out / "npy" / f"{name}.npy", mmap_mode="r+")
        memmap[start:start + rows.shape[0]] = rows
        memmap.flush()
        del memmap
        with open(self.out / relative, "a", encoding="ascii") as handle:
            handle.write("".join(f"{line}\n" for line in hex_lines(rows)))
        self._rows[name] = start + rows.shape[0]

    def write(self, name: str, value: np.ndarray, role: str, axes: tuple[str, ...],
              npy: bool = False, stem: str | None = None) -> None:
        """The hex file of one tensor (plus its per-step files) and its manifest entries."""
        relative = f"{ROLE_DIRS[role]}/{stem or name}.hex"
        tensor = Tensor(name, role, value, axes)
        lines = write_hex(self.out / relative, value, _comment(name, value.dtype, value.shape))
        self.files.append(_entry(relative, tensor, value.shape, lines, npy))
        if (self.steps and axes[:1] and axes[0] in STEP_AXES and value.ndim >= 2
                and value.dtype.kind in "iu"):
            for index, row in enumerate(value):
                step_file = f"steps/{name}/{axes[0]}{index:04d}.hex"
                count = write_hex(self.out / step_file, row,
                                  _comment(name, row.dtype, row.shape, f"[{axes[0]}={index}]"))
                entry = _entry(step_file, Tensor(name, role, row, axes[1:]), row.shape, count)
                entry["step"] = {"axis": axes[0], "index": index}
                self.files.append(entry)


def _comment(name: str, dtype: np.dtype, shape: tuple[int, ...], step: str = "") -> str:
    enc = encoding_of(dtype)
    return (f"int4rt trace {name}{step}: {np.dtype(dtype)} {list(shape)}, {enc.width_bits}-bit "
            f"{enc.encoding}, row-major")


def _entry(relative: str, tensor: Tensor, shape: tuple[int, ...], lines: int,
           npy: bool = False) -> dict[str, Any]:
    enc = encoding_of(tensor.value.dtype)
    name = tensor.name.removeprefix("tables.").removeprefix("lm.tables.")
    entry = {"file": relative, "tensor": tensor.name, "role": tensor.role,
             "dtype": str(tensor.value.dtype), "shape": list(shape),
             "width_bits": enc.width_bits, "signed": enc.signed, "encoding": enc.encoding,
             "lines": lines, "axes": list(tensor.axes), "spec": section_of(name)}
    if npy:
        entry["npy"] = f"npy/{tensor.name}.npy"
    return entry


def read_features(path: str) -> np.ndarray:
    """Float features [T, F] from a ``.npy`` file (no pickle)."""
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise Int4rtError(f"trace: cannot read features {path!r} as a .npy array ({error}); "
                          "save them with numpy.save") from None
    if not isinstance(features, np.ndarray) or not np.issubdtype(features.dtype, np.floating):
        raise Int4rtError(f"trace: features {path!r} must be a float array [frames, features], "
                          f"got {getattr(features, 'dtype', type(features).__name__)}")
    return features


def parse_labels(text: str) -> list[int]:
    """``"3,5,4"`` → [3, 5, 4]."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise Int4rtError(f"trace: --labels must be comma-separated integer ids, got {text!r}") \
            from None


def check_labels(labels: list[int], vocab_size: int, blank_id: int) -> np.ndarray:
    """Label ids as int64; a blank or an id outside the vocabulary is an error."""
    ids = np.asarray(labels, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise Int4rtError(f"labels must be ids in [0, {vocab_size}), got {labels}")
    if np.any(ids == blank_id):
        raise Int4rtError(f"labels must be non-blank ids: the blank id {blank_id} starts every "
                          "history by itself (ARITHMETIC.md §8.6) and may not appear in it")
    return ids


def _lstm_directions(model: Any, lm: Any) -> list[dict[str, Any]]:
    """What every LSTM direction consumes: the bench's recipe (docs/VERIFICATION.md §8)."""
    directions = []
    previous: list[str] = [names.ENCODER_INPUT]
    for index, layer in enumerate(model.encoder.layers):
        inputs = [names.stacked(index)] if layer.stack > 1 else previous
        cells = [names.encoder_cell(index, direction) for direction in range(len(layer.cells))]
        for direction, (prefix, cell) in enumerate(zip(cells, layer.cells, strict=True)):
            directions.append({"prefix": prefix, "params": prefix, "inputs": inputs,
                               "reverse": direction == 1, "table": "tables.sigmoid",
                               "cell": cell_scalars(cell)})
        previous = [names.name(prefix, "hidden") for prefix in cells]
    for stack, root, table in ((model.predictor.layers, names.PREDICTOR, "tables.sigmoid"),
                               (lm.layers if lm is not None else (), names.LM,
                                "lm.tables.sigmoid")):
        previous = [names.embedding(root)]
        for index, cell in enumerate(stack):
            prefix = names.stack_layer(root, index)
            directions.append({"prefix": prefix, "params": prefix, "inputs": previous,
                               "reverse": False, "table": table, "cell": cell_scalars(cell)})
            previous = [names.name(prefix, "hidden")]
    return directions


def _constants(model: Any, lm: Any) -> dict[str, Any]:
    """Scalars a bench loads into registers: LSTM directions, joint, feature quantization."""
    joint = model.joint
    constants: dict[str, Any] = {
        "cells": model_cells(model),
        "features": {"format": format_json(model.encoder.input),
                     "cmvn": model.frontend.cmvn_mean is not None,
                     "rule": "ARITHMETIC.md §8.6: CMVN in float64, divide by the scale, "
                             "floor(+1/2), add zp, clamp, then convert"},
        "joint": {"mode": joint.mode, "combine_multiplier": joint.combine_multiplier,
                  "combine_shift": joint.combine_shift, "hidden": format_json(joint.hidden),
                  "hidden_multiplier": joint.hidden_multiplier,
                  "hidden_shift": joint.hidden_shift, "logit_frac_bits": joint.logit_frac_bits},
        "encoder_stack": [layer.stack for layer in model.encoder.layers],
    }
    if lm is not None:
        constants["lm"] = {"cells": model_cells(lm), "logit_frac_bits": lm.logit_frac_bits,
                           "rounding": lm.rounding}
    return constants


def trace_model(model_path: str, out: Path, *, features: np.ndarray,
                labels: list[int] | None = None, lm_path: str | None = None,
                backend: BackendName = "numba", steps: bool = True,
                chunk_frames: int = DEFAULT_CHUNK_FRAMES, command: str = "") -> Path:
    """Run the model on ``features`` and write every traced integer to ``out``; returns the
    manifest path. Without ``labels`` the greedy transcript's tokens are used."""
    from int4rt.model.container import load_model
    from int4rt.model.framing import read_container, read_file
    from int4rt.model.lm import LmModel
    from int4rt.model.rnnt import RnntModel
    from int4rt.recognizer import Recognizer

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Int4rtError(f"--out {str(out)!r} exists and is not an empty directory")
    if chunk_frames < 1:
        raise Int4rtError(f"trace: chunk_frames must be >= 1, got {chunk_frames}")
    data = read_file(model_path)
    model = load_model(model_path)
    if not isinstance(model, RnntModel):
        raise Int4rtError(f"{model_path} is an LM file; trace needs an RNN-T model (give the "
                          "LM with --lm)")
    lm = None
    if lm_path is not None:
        lm = load_model(lm_path)
        if not isinstance(lm, LmModel):
            raise Int4rtError(f"{lm_path} is an RNN-T model file; --lm needs an LM file")
    model.quantize_features(features)  # shape and finiteness errors before anything is written
    labels_from = "given" if labels is not None else "greedy search"
    if labels is None:
        labels = list(Recognizer(model).decode_features(features, method="greedy",
                                                         backend=backend).tokens)
    ids = check_labels(labels, model.predictor.embedding.shape[0], model.blank_id)
    (out / "npy").mkdir(parents=True, exist_ok=True)
    trace = DiskTrace(out, steps)
    (out / "inputs").mkdir()
    np.save(out / "inputs" / "features.npy", features, allow_pickle=False)
    if features.dtype == np.float32:
        trace.write("features", features, "input", ("t", "F"))
    trace.write("labels", ids, "input", ("u",))
    _write_params(trace, model, lm)

    enc, _ = model.encode(features, backend=backend, trace=trace)
    history = np.concatenate([[model.blank_id], ids]).astype(np.int64)
    _run_predictor_and_joint(model, enc, history, trace, backend, chunk_frames)
    if lm is not None:  # the LM over the same history, one step per label: lm.* (§8.7)
        lm.sequence(history, backend=backend, trace=trace)

    manifest = {
        "trace_format_version": TRACE_FORMAT_VERSION, "set": "trace", "kind": "user_trace",
        "command": command, "int4rt_version": __version__,
        "model": {"file": str(model_path), "sha256": hashlib.sha256(data).hexdigest(),
                  "metadata": read_container(data)[0]},
        "lm": None if lm_path is None else {"file": str(lm_path)},
        "input": {"features_npy": "inputs/features.npy", "frames": int(features.shape[0]),
                  "feature_dim": int(features.shape[1]), "dtype": str(features.dtype),
                  "labels": [int(i) for i in ids],
                  "labels_from": labels_from},
        "profile": model.profile, "rounding": model.rounding, "backend": backend,
        "hex_format": HEX_FORMAT, "element_order": ELEMENT_ORDER,
        "compare": "tolerance zero: every value of every compared file must be equal",
        "pairs": "joint.* row n is frame n // (U+1) with label prefix n % (U+1)",
        "constants": _constants(model, lm),
        "lstm_directions": _lstm_directions(model, lm),
        "files": trace.files,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _write_params(trace: DiskTrace, model: Any, lm: Any) -> None:
    """Tables and per-layer constants of the model (and the LM, its tables as ``lm.*``)."""
    for source, prefix in ((model, ""), (lm, "lm.")):
        if source is None:
            continue
        for tensor in model_tensors(source):
            if tensor.role == "table":
                name = f"{prefix}{tensor.name}"
                trace.write(name, tensor.value, "table", tensor.axes,
                            stem=f"{prefix}{tensor.name.removeprefix('tables.')}")
            else:
                trace.write(tensor.name, tensor.value, "param", tensor.axes)


def _run_predictor_and_joint(model: Any, enc: np.ndarray, history: np.ndarray,
                             trace: DiskTrace, backend: BackendName, chunk_frames: int) -> None:
    """Predictor over the history, both projections, then the joint in chunks of frames."""
    x = model.predictor.embedding[history]
    trace.record(names.embedding(names.PREDICTOR), x)
    x = model.predictor_stack.sequence(x, backend=backend, trace=trace, prefix=names.PREDICTOR)
    enc_proj = model.project_encoder(enc, backend=backend)
    pred_proj = model.project_predictor(x, backend=backend)
    trace.record(names.JOINT_ENC_PROJ, enc_proj)
    trace.record(names.JOINT_PRED_PROJ, pred_proj)
    frames, prefixes = enc_proj.shape[0], pred_proj.shape[0]
    total = frames * prefixes
    for start in range(0, frames, chunk_frames):
        chunk = enc_proj[start:start + chunk_frames]
        local = Trace()
        model.joint_log_probs(np.repeat(chunk, prefixes, axis=0),
                              np.tile(pred_proj, (chunk.shape[0], 1)), backend=backend,
                              trace=local)
        for name, value in local.items():
            trace.record_rows(name, value, total)


def add_parser(subcommands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``trace`` to the main parser's ``subcommands``."""
    parser = subcommands.add_parser(
        "trace", help="run a model on your features or audio and write every integer as "
                      ".npy and $readmemh hex with a manifest (docs/VERIFICATION.md §8)")
    parser.add_argument("model", metavar="MODEL", help="RNN-T model file (.safetensors)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", metavar="F.npy", help="float features [frames, F]")
    source.add_argument("--audio", metavar="A.wav", help="audio file (the model's front end)")
    parser.add_argument("--labels", metavar="IDS",
                        help="comma-separated non-blank label ids (default: the greedy "
                             "transcript's tokens)")
    parser.add_argument("--lm", metavar="LM", help="also trace this LM over the labels")
    parser.add_argument("--out", required=True, help="new or empty directory to write")
    parser.add_argument("--backend", choices=BACKENDS, default="numba",
                        help="implementation that runs (the integers are identical)")
    parser.add_argument("--no-steps", action="store_true",
                        help="do not write per-step files under steps/")
    parser.add_argument("--chunk-frames", type=int, default=DEFAULT_CHUNK_FRAMES, metavar="N",
                        help=f"joint frames per chunk (memory bound; default "
                             f"{DEFAULT_CHUNK_FRAMES})")
    return parser


def run(args: argparse.Namespace, command: str = "") -> int:
    """Run ``int4rt trace`` with the parsed ``args``; returns the exit status."""
    if args.features is not None:
        features = read_features(args.features)
    else:
        from int4rt.frontend import load_features
        from int4rt.model.container import load_model

        model = load_model(args.model)
        features = load_features(args.audio, model.frontend)
    labels = None if args.labels is None else parse_labels(args.labels)
    manifest = trace_model(args.model, Path(args.out), features=features, labels=labels,
                           lm_path=args.lm, backend=args.backend, steps=not args.no_steps,
                           chunk_frames=args.chunk_frames, command=command)
    files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    values = sum(entry["lines"] for entry in files if "step" not in entry)
    print(f"traced {args.model} into {args.out}: {len(files)} files, {values} values "
          f"(manifest {manifest})")
    return 0
