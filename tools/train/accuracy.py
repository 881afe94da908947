"""The accuracy table: FP32, INT8 PTQ, INT4 PTQ (and INT4 QAT) × LM fusion × beam, WER and CER.

    python -m int4rt_train.accuracy --model-fp32 small-fp32.safetensors \\
        --lm-external lm-bible.safetensors --lm-source lm-source.safetensors \\
        --limit 20 --out docs/RESULTS.md --png docs/accuracy.png

Steps (docs/RESULTS.md, "Accuracy"):

1. ``int4rt convert`` the FP32 checkpoint to INT8 PTQ and INT4 PTQ (and the QAT checkpoint to
   INT4, or take ``--int4-qat-model``, an INT4 file converted from one before, such as the
   shipped ``int4rt/default_model/model.safetensors``), calibrated on ``--calib-set``
   (dev-fortunes); each LM to INT8 and INT4 calibrated on its dev text. The converter's
   reports give model bytes and per-layer SQNR.
2. Fusion weights per system on ``--tune-set`` (dev-bible, first ``--tune-limit`` utterances by
   id, beam ``--tune-beam``): shallow λ and density-ratio (λ, μ) from a small grid
   (``int4rt_train.fusion_tuning``). Test sets are never used to choose anything.
3. Each evaluation set (first ``--limit`` utterances by id): features once, each system's
   encoder once, then int4rt's search (``int4rt.decode.search``; ``--method``, ALSD by default)
   at every beam × {no LM, shallow, density ratio}. FP32 runs the same search on float scores
   (``int4rt_train.float_search``).
4. With ``--peer``, pocketsphinx on the same utterances (``int4rt_train.peer_pocketsphinx``);
   its hypotheses are kept in ``<work>/pocketsphinx.json``, which ``--peer-from`` reuses in a
   later run on the same audio instead of decoding again (about 40 minutes for 100 a set).
5. Markdown between markers in ``--out``, a PNG of WER against beam, and every hypothesis in
   ``<work>/accuracy.json``.

Everything runs in this one process, one thread; run it with ``nice``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from int4rt.bundle import file_digest
from int4rt.decode import DecodeOptions, search
from int4rt.frontend import load_features
from int4rt.manifests import Item, read_manifest
from int4rt.model.container import load_model
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel
from int4rt_train.accuracy_table import (
    LM_MODES,
    Point,
    Scoreboard,
    markdown_rows,
    percent,
    plot_wer,
    replace_block,
    set_table,
    utterance_count,
)
from int4rt_train.float_search import FloatSearchLm, FloatSearchRnnt, load_float
from int4rt_train.fusion_tuning import Choice, tune

TEST_SETS = ("test-fortunes-clean", "test-fortunes-noisy", "test-bible-clean",
             "test-bible-noisy", "eval-heldout-clean", "eval-heldout-noisy")
HEADING = "## Accuracy (issue 11)"
METHOD_NAMES = {"alsd": "alignment-length synchronous decoding (ALSD)",
                "beam": "modified beam search"}


@dataclass
class System:
    """One row group of the table: an RNN-T with its two LMs at one precision."""

    name: str
    model: RnntModel | FloatSearchRnnt
    lm: LmModel | FloatSearchLm | None
    source_lm: LmModel | FloatSearchLm | None
    model_bytes: int
    lm_bytes: tuple[int | None, int | None]
    choice: Choice | None = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    method: str = "alsd"

    def encode(self, features: np.ndarray) -> np.ndarray:
        """What ``search`` takes: the encoder projection (float: the encoder output)."""
        if isinstance(self.model, FloatSearchRnnt):
            return self.model.encode_features(features)
        enc, _ = self.model.encode(features)
        return self.model.project_encoder(enc)

    def modes(self) -> list[str]:
        """LM modes this system can decode (an absent LM drops its modes)."""
        return [mode for mode in LM_MODES if mode == "none" or (
            self.lm is not None and (mode == "shallow" or self.source_lm is not None))]

    def decode(self, enc: np.ndarray, mode: str, beam: int, lm_weight: float = 0.0,
               source_weight: float = 0.0) -> str:
        """The best hypothesis's text under one configuration (``method`` at ``beam``).

        A float model is searched through its model interface (the search's ``numpy`` path);
        an integer model on the Numba kernels.
        """
        backend = "numpy" if isinstance(self.model, FloatSearchRnnt) else "numba"
        if mode == "none":
            return search(self.model, enc, DecodeOptions(self.method, beam=beam),
                          backend=backend).text
        if mode == "shallow":
            return search(self.model, enc,
                          DecodeOptions(self.method, beam=beam, lm_weight=lm_weight),
                          lm=self.lm, backend=backend).text
        return search(self.model, enc,
                      DecodeOptions(self.method, beam=beam, lm_weight=lm_weight,
                                    source_lm_weight=source_weight),
                      lm=self.lm, source_lm=self.source_lm, backend=backend).text

    def weights(self, mode: str) -> tuple[float, float]:
        """The tuned (λ, μ) of ``mode`` (0, 0 without LM)."""
        if mode == "none" or self.choice is None:
            return 0.0, 0.0
        if mode == "shallow":
            return self.choice.shallow or 0.0, 0.0
        return self.choice.density_ratio or (0.0, 0.0)


def first_items(manifest: Path, limit: int | None) -> list[Item]:
    """The manifest's items with a reference, sorted by key, the first ``limit`` of them.

    An int4rt manifest's key is the audio path; the corpus names each file by its id
    (``wav/<id>.wav``), so this is the order of ids.
    """
    items = sorted((i for i in read_manifest(manifest) if i.reference is not None),
                   key=lambda item: item.key)
    return items[:limit] if limit else items


def int4rt_convert(argv: list[str], log: Path) -> None:
    """Run ``int4rt convert ARGV`` in this process; its table goes to ``log``."""
    from int4rt.cli import main as cli_main

    with log.open("w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
        status = cli_main(["convert", *argv])
    if status != 0:
        raise SystemExit(f"int4rt convert {' '.join(argv)} failed ({status}); see {log}")
    log.with_suffix(".command").write_text(shlex.join(argv), encoding="utf-8")


def plain_checkpoint(source: Path, work: Path, name: str) -> Path:
    """A checkpoint ``int4rt convert`` reads: a training checkpoint (``model.*``, optimizer
    and RNG tensors) becomes ``<work>/<name>.model.safetensors`` with its ``model.*``
    tensors, renamed without the prefix; a milestone folder (``int4rt_train.milestone``)
    becomes that file with the union of its parts (rewritten unless made from this file or
    milestone as it is now). A plain checkpoint is returned as it is.
    """
    out = work / f"{name}.model.safetensors"
    if source.is_dir():
        info = source / "milestone.json"
        if not info.is_file():
            raise SystemExit(f"accuracy: {source} is a folder without milestone.json; give a "
                             "checkpoint file or a milestone folder")
        if not _made_from(out, info):
            from safetensors.torch import save_file as save_torch

            from int4rt_train.milestone import read_milestone
            save_torch(read_milestone(source), str(out))
            _stamp(out, info)
        return out
    if not source.is_file():
        raise SystemExit(f"accuracy: {source}: no such checkpoint file or milestone folder")
    if _made_from(out, source):
        return out
    tensors = load_file(str(source))
    if not any(key.startswith("model.") for key in tensors):
        return source
    save_file({key[len("model."):]: value for key, value in tensors.items()
               if key.startswith("model.")}, str(out))
    _stamp(out, source)
    return out


def qat_export(source: Path, work: Path, config: Path) -> Path:
    """A QAT RNN-T file ``int4rt convert`` reads: a QAT training checkpoint (``model.*``
    tensors under the QAT model's own names) is exported to ``<work>/rnnt-qat.export.safetensors``
    (``int4rt_train.qat.export``); an export is returned as it is."""
    out = work / "rnnt-qat.export.safetensors"
    if not source.is_file():
        raise SystemExit(f"accuracy: {source}: no such QAT checkpoint or export file")
    if _made_from(out, source):
        return out
    with safe_open(str(source), "np") as handle:
        if not any(key.startswith("model.") for key in handle.keys()):
            return source
    from int4rt_train.qat import export
    work.mkdir(parents=True, exist_ok=True)
    export(config, source, out)
    _stamp(out, source)
    return out


def _origin(source: Path) -> str:
    return f"{source.resolve()} {source.stat().st_mtime_ns}"


def _made_from(out: Path, source: Path) -> bool:
    stamp = out.with_suffix(".source")
    return out.is_file() and stamp.is_file() and \
        stamp.read_text(encoding="utf-8") == _origin(source)


def _stamp(out: Path, source: Path) -> None:
    out.with_suffix(".source").write_text(_origin(source), encoding="utf-8")


@dataclass(frozen=True)
class Converted:
    """A converted file and what its report says."""

    path: Path
    report: dict
    command: str


def convert(checkpoint: Path, config: Path, out: Path, calib: Path, bits: int | None,
            reuse: bool, qat: bool = False) -> Converted:
    """``int4rt convert`` with calibration (and ``--weight-bits/--activation-bits`` bits).

    A QAT checkpoint keeps the config's cell scale, the one it trained with (TRAINING.md §6).
    """
    argv = [str(checkpoint), "--config", str(config), "-o", str(out), "--calib", str(calib)]
    if bits is not None:
        argv += ["--weight-bits", str(bits), "--activation-bits", str(bits)]
    if qat:
        argv += ["--cell-scale", "config"]
    report = out.with_name(out.stem + ".report.json")
    if not (reuse and _reusable(out, report, checkpoint, argv)):
        int4rt_convert(argv, out.with_suffix(".log"))
    return Converted(out, json.loads(report.read_text(encoding="utf-8")),
                     "int4rt convert " + shlex.join(argv))


def converted_before(path: Path) -> Converted:
    """An INT4 RNN-T file ``int4rt convert`` made from a QAT checkpoint earlier (the INT4 QAT
    rows without the checkpoint): its bytes, and its SHA-256 in place of a convert command."""
    if not path.is_file():
        raise SystemExit(f"accuracy: {path}: no such int4rt model file")
    model = load_model(path)
    if not isinstance(model, RnntModel):
        raise SystemExit(f"accuracy: {path} holds a {type(model).__name__}, not an RNN-T; "
                         "--int4-qat-model takes an int4rt RNN-T file")
    bits = sorted({layer.weight_bits for _, layer, _ in model.linear_layers()})
    if bits != [4]:
        raise SystemExit(f"accuracy: {path} has {'/'.join(map(str, bits))}-bit weights; "
                         "--int4-qat-model takes an INT4 file (int4rt convert --weight-bits 4 "
                         "of a QAT checkpoint)")
    return Converted(path, {"sizes": {"file_bytes": path.stat().st_size}},
                     f"converted before: {path} (sha256 {file_digest(path)})")


def _reusable(out: Path, report: Path, checkpoint: Path, argv: list[str]) -> bool:
    """Whether ``out`` was converted by this very command from the checkpoint as it is now."""
    command = out.with_suffix(".command")
    if not (out.is_file() and report.is_file() and command.is_file()):
        return False
    return (command.read_text(encoding="utf-8") == shlex.join(argv)
            and out.stat().st_mtime >= checkpoint.stat().st_mtime)


def build_systems(args: argparse.Namespace, work: Path) -> tuple[list[System], dict]:
    """Convert everything; the systems in table order and the conversions by name."""
    calib = args.corpus / "sets" / args.calib_set / "manifest.jsonl"
    lm_checkpoints = {"ext": args.lm_external, "src": args.lm_source}
    lm_calib = {"ext": args.lm_external_calib, "src": args.lm_source_calib}
    lm_plain = {key: plain_checkpoint(path, work, f"lm-{key}")
                for key, path in lm_checkpoints.items() if path is not None}
    fp32 = plain_checkpoint(args.model_fp32, work, "rnnt-fp32")
    qat = None if args.model_qat is None else qat_export(args.model_qat, work, args.config)
    conversions: dict[str, Converted] = {}
    for bits in (8, 4):
        conversions[f"int{bits}"] = convert(fp32, args.config,
                                            work / f"rnnt-int{bits}.safetensors", calib, bits,
                                            args.reuse)
        for key, path in lm_plain.items():
            conversions[f"{key}-int{bits}"] = convert(
                path, args.lm_config, work / f"lm-{key}-int{bits}.safetensors", lm_calib[key],
                bits, args.reuse)
    if qat is not None:
        conversions["int4-qat"] = convert(qat, args.config,
                                          work / "rnnt-int4-qat.safetensors", calib, 4,
                                          args.reuse, qat=True)
    elif args.int4_qat_model is not None:
        conversions["int4-qat"] = converted_before(args.int4_qat_model)
    int8 = load_model(conversions["int8"].path)
    assert isinstance(int8, RnntModel)
    fp32_bytes = conversions["int8"].report["sizes"]["fp32_bytes"]

    def lm_pair(suffix: str) -> tuple[list, list]:
        models, sizes = [], []
        for key in ("ext", "src"):
            converted = conversions.get(f"{key}-{suffix}")
            models.append(None if converted is None else load_model(converted.path))
            sizes.append(None if converted is None else converted.report["sizes"]["file_bytes"])
        return models, sizes

    systems = []
    float_lms = [None if key not in lm_plain else load_float(lm_plain[key], args.lm_config)
                 for key in ("ext", "src")]
    float_lm_bytes = [None if key not in lm_plain else conversions[f"{key}-int8"].report[
        "sizes"]["fp32_bytes"] for key in ("ext", "src")]
    if "fp32" in args.systems:
        fmodel = load_float(fp32, args.config,
                            (int8.frontend.cmvn_mean, int8.frontend.cmvn_std))
        systems.append(System("FP32", fmodel, *float_lms, fp32_bytes, tuple(float_lm_bytes),
                              method=args.method))
    for name, key, lm_key in (("INT8 PTQ", "int8", "int8"), ("INT4 PTQ", "int4", "int4"),
                              ("INT4 QAT", "int4-qat", "int4")):
        if key not in conversions or key not in args.systems:
            continue
        model = load_model(conversions[key].path)
        lms, sizes = lm_pair(lm_key)
        systems.append(System(name, model, *lms, conversions[key].report["sizes"]["file_bytes"],
                              tuple(sizes), method=args.method))
    return systems, conversions


def tune_systems(systems: list[System], dev_items: list[Item], args: argparse.Namespace,
                 frontend: object) -> None:
    """Choose each system's fusion weights on the dev items (never on a test set)."""
    features = {item.key: load_features(item.path, frontend) for item in dev_items}
    for system in systems:
        if system.lm is None:
            continue
        start = time.process_time()
        encoded: dict[str, np.ndarray] = {}

        def decode(item: Item, mode: str, lm_weight: float, source_weight: float,
                   system: System = system, encoded: dict = encoded) -> str:
            if item.key not in encoded:
                encoded[item.key] = system.encode(features[item.key])
            return system.decode(encoded[item.key], mode, args.tune_beam, lm_weight,
                                 source_weight)

        system.choice = tune(decode, dev_items, args.lm_weights, args.source_weights,
                             with_source=system.source_lm is not None)
        system.cpu_seconds["tuning"] = time.process_time() - start
        print(f"{system.name}: shallow λ {system.choice.shallow}, density ratio "
              f"{system.choice.density_ratio}", file=sys.stderr, flush=True)


def evaluate(systems: list[System], sets: dict[str, list[Item]], beams: Sequence[int],
             frontend: object, hyps: dict) -> Scoreboard:
    """Decode every set with every system, LM mode and beam; tally WER and CER."""
    board = Scoreboard()
    for set_name, items in sets.items():
        for index, item in enumerate(items):
            features = load_features(item.path, frontend)
            for system in systems:
                start = time.process_time()
                enc = system.encode(features)
                for mode in system.modes():
                    lm_weight, source_weight = system.weights(mode)
                    for beam in beams:
                        text = system.decode(enc, mode, beam, lm_weight, source_weight)
                        point = Point(system.name, mode, beam)
                        board.add(set_name, point, item.reference or "", text)
                        hyps.setdefault(set_name, {}).setdefault(item.key, {})[
                            f"{system.name}|{mode}|{beam}"] = text
                system.cpu_seconds[set_name] = system.cpu_seconds.get(set_name, 0.0) + \
                    time.process_time() - start
            print(f"{set_name} {index + 1}/{len(items)}", file=sys.stderr, flush=True)
    return board


def peer_rows(args: argparse.Namespace, sets: dict[str, list[Item]], board: Scoreboard,
              vocab: tuple[str, ...]) -> dict:
    """pocketsphinx on the same utterances, tallied under the key ``pocketsphinx``.

    Its record (hypotheses, audio digests, CPU time) is run here (``--peer``) or reused from
    ``--peer-from``, and kept as ``<work>/pocketsphinx.json`` either way.
    """
    from int4rt_train.peer_pocketsphinx import peer_record, reused_record

    if args.peer_from:
        record = reused_record(args.peer_from, sets)
    else:
        record = peer_record(sets, vocab)
    (args.work / "pocketsphinx.json").write_text(json.dumps(record, indent=1) + "\n",
                                                 encoding="utf-8")
    for set_name, items in sets.items():
        for item in items:
            board.add(set_name, "pocketsphinx", item.reference or "",
                      record["hypotheses"][set_name][item.key])
    return record


def sqnr_lines(conversions: dict[str, Converted]) -> list[str]:
    """Per-layer weight and activation SQNR of the INT8 and INT4 PTQ RNN-T conversions."""
    reports = {name: conversions[name].report for name in ("int8", "int4")}
    weights = {name: {layer["name"]: layer.get("weight_sqnr_db") for layer in r["layers"]}
               for name, r in reports.items()}
    acts = {name: {a["name"]: a.get("sqnr_db") for a in r["activations"]}
            for name, r in reports.items()}

    def db(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    lines = ["Weights (quantized vs float weights):", ""]
    lines += markdown_rows(["layer", "shape", "INT8 PTQ dB", "INT4 PTQ dB"], (
        (layer["name"], "×".join(map(str, layer["shape"])), db(weights["int8"].get(layer["name"])),
         db(weights["int4"].get(layer["name"]))) for layer in reports["int4"]["layers"]))
    utts = reports["int8"]["summary"].get("evaluated_utterances")
    lines += [f"Activations (integer model vs float model on {utts} calibration "
              "utterances):", ""]
    lines += markdown_rows(["activation", "INT8 PTQ dB", "INT4 PTQ dB"], (
        (name, db(acts["int8"].get(name)), db(value)) for name, value in acts["int4"].items()))
    return lines


def render(args: argparse.Namespace, command: str, systems: list[System], board: Scoreboard,
           conversions: dict[str, Converted], sets: dict[str, list[Item]],
           peer: dict | None, wall: dict[str, float]) -> str:
    """The markdown block written between the markers."""
    names = [system.name for system in systems]
    lines = [
        "Written by the command below; every number in this block comes from it. The audio is "
        "**synthetic** (espeak-ng / flite speech, reserved voices and sentences, "
        "`int4rt_train.data`), not recorded speech.", "",
        "```", command, "```", "",
        f"Utterances per set: the first {args.limit or 'all'} by id. Search: int4rt's "
        f"{METHOD_NAMES[args.method]} (DECODING.md) at each beam; FP32 runs the same search "
        "code on the float model's log-probabilities (`int4rt_train.float_search`, 2^-16-nat "
        "fixed point). "
        "Fusion weights chosen per system on "
        f"{args.tune_set} (first {args.tune_limit} utterances, beam {args.tune_beam}); "
        "WER/CER in percent.", "",
    ]
    for set_name in sets:
        lines += [f"**{set_name}** ({utterance_count(board, set_name)} utterances)", ""]
        lines += set_table(board, set_name, names, args.beams)
    if peer is not None:
        reused = (f" Its hypotheses were reused from `{args.peer_from}`, written by an earlier "
                  "run on byte-identical audio (SHA-256 checked per file)."
                  if args.peer_from else "")
        lines += [f"Peer on the same audio: {peer['peer']} with its bundled US English model "
                  "(default acoustic model, 3-gram LM and dictionary), output lowercased and "
                  "reduced to the RNN-T's character set, scored with the same normalization."
                  + reused, ""]
        lines += markdown_rows(["set", "utterances", "WER", "CER"], (
            (set_name, board.get(set_name, "pocketsphinx").utterances,
             percent(board.get(set_name, "pocketsphinx").wer),
             percent(board.get(set_name, "pocketsphinx").cer)) for set_name in sets))
    fp32_bytes = conversions["int8"].report["sizes"]["fp32_bytes"]
    lines += ["Model bytes (whole file; FP32: 4 bytes per float parameter) and fusion weights:",
              ""]
    rows = []
    for system in systems:
        choice = system.choice
        shallow = "n/a" if choice is None or choice.shallow is None else f"{choice.shallow:g}"
        ratio = ("n/a" if choice is None or choice.density_ratio is None
                 else "λ {:g}, μ {:g}".format(*choice.density_ratio))
        rows.append((system.name, f"{system.model_bytes:,}",
                     f"{fp32_bytes / system.model_bytes:.2f}×",
                     *(("n/a" if b is None else f"{b:,}") for b in system.lm_bytes),
                     shallow, ratio))
    lines += markdown_rows(["system", "RNN-T bytes", "compression", "external LM bytes",
                            "source LM bytes", "shallow λ", "density ratio"], rows)
    tuned = [s for s in systems if s.choice is not None]
    if tuned:
        lines += [f"Dev WER ({args.tune_set}) at each grid point:", ""]
        header = ["mode", "λ", "μ", *(s.name for s in tuned)]
        table = {}
        for system in tuned:
            for mode, lm, src, wer in system.choice.points:
                table.setdefault((mode, lm, src), {})[system.name] = percent(wer)
        lines += markdown_rows(header, ((mode.replace("_", " "), f"{lm:g}", f"{src:g}",
                                         *(cells.get(s.name, "") for s in tuned))
                                        for (mode, lm, src), cells in table.items()))
    lines += ["Conversions (calibration: " + args.calib_set + "; LMs on their dev text):", ""]
    lines += [f"- `{c.command}`" for c in conversions.values()] + [""]
    lines += ["### Per-layer SQNR of the trained model (INT8 and INT4 PTQ)", ""]
    lines += sqnr_lines(conversions)
    total = sum(len(items) for items in sets.values())
    spent = [(s.name, sum(v for k, v in s.cpu_seconds.items() if k in sets)) for s in systems]
    phases = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in wall.items())
    lines.append(
        f"Time ({total} utterances, one thread; wall clock on the shared machine: {phases}). "
        "CPU time of decoding (features, encoder, every search): "
        + ", ".join(f"{name} {cpu:.0f} s ({cpu / max(total, 1):.2f} s per utterance, "
                    f"{len(args.beams) * len(system.modes())} searches each)"
                    for (name, cpu), system in zip(spent, systems, strict=True))
        + ("" if peer is None else f"; pocketsphinx {peer['cpu_seconds']:.0f} s"
           + (" (when its record was written)" if args.peer_from else ""))
        + "".join(f"; tuning {s.name} {s.cpu_seconds['tuning']:.0f} s" for s in tuned) + ".")
    return "\n".join(lines) + "\n"


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m int4rt_train.accuracy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-fp32", type=Path, required=True,
                   help="float RNN-T: a checkpoint or a milestone folder")
    qat = p.add_mutually_exclusive_group()
    qat.add_argument("--model-qat", type=Path,
                     help="QAT RNN-T: a QAT run's checkpoint or its --export (INT4 QAT rows)")
    qat.add_argument("--int4-qat-model", type=Path,
                     help="INT4 QAT rows from an int4rt file converted from a QAT checkpoint "
                     "before (e.g. int4rt/default_model/model.safetensors)")
    p.add_argument("--config", type=Path, default=Path("configs/small.json"))
    p.add_argument("--lm-external", type=Path,
                   help="external (target-domain) LM: a checkpoint or a milestone folder")
    p.add_argument("--lm-source", type=Path,
                   help="source-domain LM: a checkpoint or a milestone folder")
    p.add_argument("--lm-config", type=Path, default=Path("configs/lm-small.json"))
    p.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    p.add_argument("--sets", nargs="+", default=list(TEST_SETS))
    p.add_argument("--calib-set", default="dev-fortunes")
    p.add_argument("--lm-external-calib", type=Path,
                   help="LM calibration text (default CORPUS/text/bible-dev.txt)")
    p.add_argument("--lm-source-calib", type=Path,
                   help="LM calibration text (default CORPUS/text/fortunes-dev.txt)")
    p.add_argument("--tune-set", default="dev-bible")
    p.add_argument("--tune-limit", type=int, default=40)
    p.add_argument("--tune-beam", type=int, default=4)
    p.add_argument("--lm-weights", type=_floats, default=(0.3, 0.5, 0.7, 1.0))
    p.add_argument("--source-weights", type=_floats, default=(0.1, 0.3, 0.5, 0.7))
    p.add_argument("--beams", type=_ints, default=(1, 4, 8))
    p.add_argument("--method", choices=tuple(METHOD_NAMES), default="alsd",
                   help="search: alsd (several labels a frame) or beam (modified beam search, "
                   "at most one label per encoder frame)")
    p.add_argument("--limit", type=int, help="first N utterances (by id) of each set")
    p.add_argument("--systems", type=lambda s: tuple(s.split(",")),
                   default=("fp32", "int8", "int4", "int4-qat"))
    peer = p.add_mutually_exclusive_group()
    peer.add_argument("--peer", action="store_true", help="also decode with pocketsphinx")
    peer.add_argument("--peer-from", type=Path,
                      help="pocketsphinx rows from a record written before (<work>/"
                      "pocketsphinx.json, or int4rt_train.peer_pocketsphinx --hypotheses)")
    p.add_argument("--work", type=Path, default=Path("/tmp/int4rt-accuracy"),
                   help="folder for converted models, logs and accuracy.json")
    p.add_argument("--reuse", action="store_true",
                   help="reuse a converted model in --work made by the same convert command "
                        "after the checkpoint's last change")
    p.add_argument("--out", type=Path, required=True, help="markdown file (docs/RESULTS.md)")
    p.add_argument("--png", type=Path, help="plot of WER against beam")
    return p


def main(argv: list[str] | None = None) -> int:
    """Convert, tune, decode, write the table."""
    args = parser().parse_args(argv)
    args.lm_external_calib = args.lm_external_calib or args.corpus / "text" / "bible-dev.txt"
    args.lm_source_calib = args.lm_source_calib or args.corpus / "text" / "fortunes-dev.txt"
    command = "python -m int4rt_train.accuracy " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    wall: dict[str, float] = {}
    start = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    systems, conversions = build_systems(args, args.work)
    int8 = load_model(conversions["int8"].path)
    wall["conversions and loading"], start = time.time() - start, time.time()
    dev = first_items(args.corpus / "sets" / args.tune_set / "manifest.jsonl", args.tune_limit)
    tune_systems(systems, dev, args, int8.frontend)
    wall["tuning"], start = time.time() - start, time.time()
    sets = {name: first_items(args.corpus / "sets" / name / "manifest.jsonl", args.limit)
            for name in args.sets}
    hyps: dict = {}
    board = evaluate(systems, sets, args.beams, int8.frontend, hyps)
    wall["decoding"], start = time.time() - start, time.time()
    peer = None
    if args.peer or args.peer_from:
        peer = peer_rows(args, sets, board, tuple(int8.vocab))
        wall["pocketsphinx"] = time.time() - start
    block = render(args, command, systems, board, conversions, sets, peer, wall)
    document = args.out.read_text(encoding="utf-8") if args.out.is_file() else "# Results\n"
    args.out.write_text(replace_block(document, block, HEADING), encoding="utf-8")
    if args.png:
        plot_wer(board, list(sets), [s.name for s in systems], args.beams, args.png)
    (args.work / "accuracy.json").write_text(json.dumps(
        {"command": command, "hypotheses": hyps,
         "references": {n: {i.key: i.reference for i in items} for n, items in sets.items()}},
        indent=1) + "\n", encoding="utf-8")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
