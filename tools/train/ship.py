"""Build the default model bundle shipped in the package (docs/TRAINING.md §7).

    python -m int4rt_train.ship --model /work/runs/small --lm-external /work/runs/lm-bible \\
        --lm-source /work/runs/lm-source --corpus /work/corpus --count 5

``--model`` and the LMs are each a training run folder (its newest ``ckpt-*``), a checkpoint
file, a milestone folder (``models/checkpoints/small-fp32``) or a plain safetensors file of
model tensors; either LM may be left out. The RNN-T is converted to INT4 with calibration on
``dev-fortunes`` (the LMs on the dev text of their domain); the recommended decoding is the
point of a grid (greedy, {modified beam, ALSD} × beam × LM weights × length reward;
``int4rt_train.fusion_tuning.decoding_points``) with the lowest WER on a fixed mix of
``dev-fortunes`` and ``dev-bible`` utterances; ``bundle.json`` records where the model came
from (the source's saved state: checkpoint, milestone or QAT export metadata; plus
``--provenance KEY=VALUE``); ``--count`` clips are taken from
``eval-heldout-clean`` (reserved voices, held-out sentences), one per voice, deterministically.
The folder ``--out`` (default ``int4rt/default_model``) is replaced whole by ``bundle.json``,
``model.safetensors``, ``lm-external.safetensors``, ``lm-source.safetensors``, ``clips.jsonl``
and ``clips/*.wav``; it is checked by ``int4rt.bundle.load_bundle`` before it replaces the old.
An LM run folder without a checkpoint yet is left out with a message.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import shlex
import shutil
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from safetensors.torch import save_file

from int4rt.bundle import BUNDLE_DIR, BUNDLE_FORMAT, BUNDLE_VERSION, file_digest, load_bundle
from int4rt.metrics import cer, wer
from int4rt.model.container import load_model
from int4rt.recognizer import Recognizer
from int4rt_convert import ConvertOptions, QuantOptions, convert
from int4rt_train.checkpoint import model_tensors, newest_checkpoint
from int4rt_train.fusion_tuning import DecodingGrid, best_point, decoding_points
from int4rt_train.milestone import provenance, read_milestone

CLIP_SECONDS = (1.5, 4.0)  # a shipped clip's duration, shortest and longest
LM_FILES = {"lm": "lm-external.safetensors", "source_lm": "lm-source.safetensors"}
LM_TEXTS = {"lm": "bible", "source_lm": "fortunes"}  # the domain each LM's text is from


@dataclass
class Weights:
    """Float model tensors (converter names) and where they came from."""

    tensors: dict[str, Any]
    source: str
    state: dict[str, Any]


def read_weights(path: Path) -> Weights:
    """The model tensors of a run folder, checkpoint, milestone or plain safetensors file, with
    their ``provenance`` (a QAT export carries its run's state, ``int4rt_train.qat --export``).
    """
    if path.is_dir() and (path / "milestone.json").is_file():
        info = provenance(path)
        return Weights(read_milestone(path), f"{path.name}/ ({info.get('source')})", info)
    if path.is_dir():
        newest = newest_checkpoint(path)
        if newest is None:
            raise SystemExit(f"ship: {path} holds no ckpt-*.safetensors and no milestone.json")
        path = newest
    if not path.is_file():
        raise SystemExit(f"ship: {path}: no such checkpoint file or folder")
    return Weights(model_tensors(path), path.name, provenance(path))


def is_qat(weights: Weights) -> bool:
    """Whether ``weights`` come from QAT (they carry learned activation clips)."""
    return any("act_clip" in name for name in weights.tensors)


def convert_weights(weights: Weights, config: str, calibration: Path, output: Path,
                    work: Path, limit: int | None) -> None:
    """Write ``weights`` as a checkpoint in ``work`` and convert it to ``output`` (INT4).

    A QAT checkpoint keeps the config's cell scale, the one it trained with (TRAINING.md §6).
    """
    checkpoint = work / f"{output.stem}-fp32.safetensors"
    save_file({name: tensor.float().contiguous() for name, tensor in weights.tensors.items()},
              str(checkpoint))
    quant = QuantOptions(cell_scale="config") if is_qat(weights) else QuantOptions()
    convert(ConvertOptions(checkpoint=checkpoint, config=Path(config), output=output,
                           calibration=calibration, calibration_limit=limit, quant=quant,
                           report=work / f"{output.stem}.report.json"))


def read_rows(manifest: Path) -> list[dict[str, Any]]:
    """A JSONL manifest's rows, with ``audio`` made absolute."""
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    for row in rows:
        row["audio"] = str(manifest.parent / row["audio"])
    return rows


def text_digest(text: str) -> str:
    """SHA-256 of a string, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def voice_family(voice: str) -> str:
    """``espeak:en-029+f2:s176:p38`` → ``espeak:f2``; ``flite:slt`` → ``flite:slt``."""
    parts = voice.split(":")
    return f"{parts[0]}:{parts[1].split('+')[-1]}" if len(parts) > 1 else voice


def choose_clips(manifest: Path, count: int) -> list[dict[str, Any]]:
    """``count`` clips with distinct voices: families taken round-robin over synthesizers in
    name order, from each the first row lasting ``CLIP_SECONDS`` in the order of the SHA-256
    of their ids (a fixed shuffle, so that the sentences' domains mix).
    """
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(read_rows(manifest), key=lambda row: text_digest(row["id"])):
        seconds = sf.info(row["audio"]).duration
        if CLIP_SECONDS[0] <= seconds <= CLIP_SECONDS[1]:
            by_family[voice_family(row["voice"])].append(row)
    synths: dict[str, list[str]] = defaultdict(list)
    for family in sorted(by_family):
        synths[family.split(":")[0]].append(family)
    order = [family for group in itertools.zip_longest(*synths.values()) for family in group
             if family is not None]
    if len(order) < count:
        raise SystemExit(f"ship: {manifest} has {len(order)} voices with clips of "
                         f"{CLIP_SECONDS[0]}-{CLIP_SECONDS[1]} s, fewer than --count {count}")
    return [by_family[family][0] for family in order[:count]]


def write_clips(rows: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """Copy the clips as 16 kHz 16-bit mono WAV into ``out/clips``; the manifest rows."""
    (out / "clips").mkdir()
    written = []
    for row in rows:
        samples, rate = sf.read(row["audio"], dtype="int16")
        if rate != 16000 or samples.ndim != 1:
            raise SystemExit(f"ship: {row['audio']} is not 16 kHz mono")
        name = f"clips/{row['id']}.wav"
        sf.write(out / name, samples, rate, subtype="PCM_16")
        written.append({"audio": name, "id": row["id"], "text": row["text"],
                        "voice": row["voice"], "sha256": file_digest(out / name)})
    return written


def tuning_set(corpus: Path, per_set: int) -> list[dict[str, Any]]:
    """The first ``per_set`` rows (by id) of dev-fortunes and of dev-bible."""
    rows = []
    for name in ("dev-fortunes", "dev-bible"):
        chosen = sorted(read_rows(corpus / "sets" / name / "manifest.jsonl"),
                        key=lambda row: row["id"])
        rows += chosen[:per_set]
    return rows


def score(recognizer: Recognizer, features: list[np.ndarray], refs: list[str],
          settings: dict[str, Any]) -> dict[str, Any]:
    """WER and CER (percent) of ``settings`` over precomputed features."""
    hyps = [recognizer.decode_features(f, **settings).text for f in features]
    return {**{k: v for k, v in settings.items() if k not in LM_FILES},
            "wer": round(100 * wer(refs, hyps), 2), "cer": round(100 * cer(refs, hyps), 2)}


def tune(recognizer: Recognizer, rows: list[dict[str, Any]], lms: dict[str, str],
         grid: DecodingGrid) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every point's WER on ``rows`` (``decoding_points``: greedy and the grid); the best
    settings (``best_point``: lowest WER, then CER, then the simplest) and the table.
    """
    features = [recognizer.features(row["audio"]) for row in rows]
    refs = [row["text"] for row in rows]
    points = decoding_points(grid, "lm" in lms, "source_lm" in lms)
    for point in points:
        if "lm_weight" in point:
            point["lm"] = lms["lm"]
        if "source_lm_weight" in point:
            point["source_lm"] = lms["source_lm"]
    table = []
    for point in points:
        table.append(score(recognizer, features, refs, point))
        print(f"  tune {json.dumps(table[-1])}", flush=True)
    return points[best_point(table)], table


def origin_entry(state: dict[str, Any]) -> dict[str, Any]:
    """Provenance fields common to every bundle.json model entry: ``init_from`` and, when the
    run recorded them (QAT runs), what the weights it started from had seen (``init``)."""
    entry: dict[str, Any] = {"init_from": state.get("init_from")}
    init = state.get("init_state")
    if init:
        seconds = init.get("audio_seconds")
        entry["init"] = {key: init.get(key) for key in ("step", "epoch", "best_dev_wer",
                                                        "dev_bpc", "init_from", "source")
                         if init.get(key) is not None}
        if seconds is not None:
            entry["init"]["audio_hours"] = round(seconds / 3600, 2)
    return entry


def lm_entry(role: str, weights: Weights, out: Path, calibration: Path) -> dict[str, Any]:
    """The bundle.json entry of an LM file."""
    path = out / LM_FILES[role]
    return {"file": path.name, "sha256": file_digest(path), "bytes": path.stat().st_size,
            "config": "lm-small", "weights": "INT4 QAT" if is_qat(weights) else "INT4 PTQ",
            "checkpoint": weights.source, "step": weights.state.get("step"),
            "epoch": weights.state.get("epoch"), "dev_bpc": weights.state.get("dev_bpc"),
            **origin_entry(weights.state), "text_domain": LM_TEXTS[role],
            "calibration": str(calibration)}


def convert_lms(args: argparse.Namespace, work: Path, out: Path) -> dict[str, Any]:
    """Convert the LMs given into ``out``; their bundle.json entries (None: not shipped)."""
    sources = {"lm": args.lm_external, "source_lm": args.lm_source}
    entries: dict[str, Any] = {}
    for role, source in sources.items():
        if source is not None and source.is_dir() and newest_checkpoint(source) is None \
                and not (source / "milestone.json").is_file():
            print(f"ship: {source} has no checkpoint yet; shipping without the {role}",
                  flush=True)
            source = None
        if source is None:
            entries[role] = None
            continue
        weights = read_weights(source)
        calibration = args.corpus / "text" / f"{LM_TEXTS[role]}-dev.txt"
        print(f"ship: converting {role} {weights.source} to INT4", flush=True)
        convert_weights(weights, "lm-small", calibration, out / LM_FILES[role], work,
                        args.lm_calib_limit)
        entries[role] = lm_entry(role, weights, out, calibration)
    return entries


def model_entry(weights: Weights, path: Path, calibration: Path,
                extra: dict[str, Any]) -> dict[str, Any]:
    """The bundle.json entry of the RNN-T file: its provenance from ``weights.state`` (for a
    QAT run, ``qat_best_dev_wer`` is its own, the INT4 engine's greedy dev WER, and
    ``fp32_best_dev_wer`` that of the FP32 weights it started from), then ``extra``
    (``--provenance``), which adds or replaces fields."""
    state = weights.state
    seconds = state.get("audio_seconds")
    qat = is_qat(weights)
    entry = {"file": path.name, "sha256": file_digest(path), "bytes": path.stat().st_size,
             "config": "small", "weights": "INT4 QAT" if qat else "INT4 PTQ",
             "checkpoint": weights.source, "step": state.get("step"),
             "epoch": state.get("epoch"), **origin_entry(state),
             "audio_hours": None if seconds is None else round(seconds / 3600, 2)}
    if qat:
        entry["qat_best_dev_wer"] = state.get("best_dev_wer")
        entry["fp32_best_dev_wer"] = (state.get("init_state") or {}).get("best_dev_wer")
    else:
        entry["fp32_best_dev_wer"] = state.get("best_dev_wer")
    return {**entry, "fp32_dev_set": "dev-fortunes", "calibration": str(calibration), **extra}


def build(args: argparse.Namespace, work: Path, out: Path) -> dict[str, Any]:
    """Write the bundle into the empty folder ``out``; return its bundle.json."""
    calibration = args.corpus / "sets" / "dev-fortunes" / "manifest.jsonl"
    weights = read_weights(args.model)
    print(f"ship: converting {weights.source} to INT4", flush=True)
    convert_weights(weights, "small", calibration, out / "model.safetensors", work, None)
    entries = convert_lms(args, work, out)
    clips = write_clips(choose_clips(args.clips, args.count), out)
    (out / "clips.jsonl").write_text("".join(json.dumps(row) + "\n" for row in clips),
                                     encoding="utf-8")
    recognizer = Recognizer(load_model(out / "model.safetensors"))
    lms = {role: str(out / LM_FILES[role]) for role in LM_FILES if entries[role] is not None}
    print("ship: choosing the decoding settings", flush=True)
    grid = DecodingGrid(args.methods, args.beams, args.lm_weights, args.source_lm_weights,
                        args.length_rewards)
    best, table = tune(recognizer, tuning_set(args.corpus, args.tune_per_set), lms, grid)
    for role in LM_FILES:
        if entries[role] is not None and role not in best:
            entries[role]["note"] = "not used by the recommended decoding (no gain in tuning)"
    clip_features = [recognizer.features(out / row["audio"]) for row in clips]
    clip_refs = [row["text"] for row in clips]
    return {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "model": model_entry(weights, out / "model.safetensors", calibration, args.provenance),
        **entries,
        "decoding": {key: value for key, value in best.items() if key not in LM_FILES},
        "tuning": {"sets": ["dev-fortunes", "dev-bible"], "per_set": args.tune_per_set,
                   "table": table},
        "clips": {"manifest": "clips.jsonl", "sha256": file_digest(out / "clips.jsonl"),
                  "set": args.clips.parent.name, "count": len(clips),
                  "greedy": score(recognizer, clip_features, clip_refs, {"method": "greedy"}),
                  "recommended": score(recognizer, clip_features, clip_refs, best)},
        "command": " ".join(["python -m int4rt_train.ship",
                             *(shlex.quote(a) for a in args.argv)]),
    }


def main(argv: list[str] | None = None) -> int:
    """Build the bundle in a temporary folder, check it, then replace ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.ship", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True,
                        help="RNN-T: run folder, checkpoint, milestone folder or safetensors")
    parser.add_argument("--lm-external", type=Path, help="external (bible) LM, same kinds")
    parser.add_argument("--lm-source", type=Path, help="source (fortunes) LM, same kinds")
    parser.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    parser.add_argument("--clips", type=Path,
                        help="manifest the clips come from (default CORPUS/sets/"
                             "eval-heldout-clean/manifest.jsonl); a folder means its manifest")
    parser.add_argument("--count", type=int, default=5, help="clips to ship (default 5)")
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--tune-per-set", type=int, default=40,
                        help="utterances of each dev set the decoding is chosen on (default 40)")
    grid = DecodingGrid()
    parser.add_argument("--methods", type=_methods, default=grid.methods,
                        help="search methods besides greedy (default beam,alsd)")
    parser.add_argument("--beams", type=_numbers(int), default=grid.beams)
    parser.add_argument("--lm-weights", type=_numbers(float), default=grid.lm_weights)
    parser.add_argument("--source-lm-weights", type=_numbers(float), default=grid.source_weights)
    parser.add_argument("--length-rewards", type=_numbers(float), default=grid.length_rewards)
    parser.add_argument("--lm-calib-limit", type=int, default=200,
                        help="LM calibration sentences (default 200)")
    parser.add_argument("--provenance", type=_key_value, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="add or replace a field of bundle.json's model entry (VALUE: JSON "
                             "if it parses, else a string); repeatable")
    args = parser.parse_args(argv)
    args.provenance = dict(args.provenance)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.clips is None:
        args.clips = args.corpus / "sets" / "eval-heldout-clean"
    if args.clips.is_dir():
        args.clips = args.clips / "manifest.jsonl"
    if args.count < 1:
        parser.error("--count must be >= 1")
    needed = [args.clips, *(args.corpus / "sets" / name / "manifest.jsonl"
                            for name in ("dev-fortunes", "dev-bible"))]
    needed += [args.corpus / "text" / f"{LM_TEXTS[role]}-dev.txt"
               for role, source in (("lm", args.lm_external), ("source_lm", args.lm_source))
               if source is not None]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        parser.error(f"missing {', '.join(missing)} (the corpus: python -m int4rt_train.data)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out.parent, prefix=".ship-") as folder:
        work, staged = Path(folder) / "work", Path(folder) / "bundle"
        work.mkdir()
        staged.mkdir()
        info = build(args, work, staged)
        (staged / "bundle.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        bundle = load_bundle(staged)
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.move(str(staged), str(args.out))
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.rglob("*")) if p.is_file()}
    print(json.dumps(sizes, indent=2))
    print(f"ship: wrote {args.out} ({sum(sizes.values()) / 2**20:.2f} MiB); "
          f"{bundle.describe()}")
    print(f"ship: clips WER {info['clips']['recommended']['wer']} % (recommended), "
          f"{info['clips']['greedy']['wer']} % (greedy)")
    return 0


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _methods(text: str) -> tuple[str, ...]:
    methods = tuple(text.split(","))
    if not set(methods) <= {"beam", "alsd"}:
        raise argparse.ArgumentTypeError(f"methods are beam and alsd; got {text!r}")
    return methods


def _numbers(kind: type) -> Any:
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected numbers separated by commas, "
                                             f"got {text!r}") from None
    return parse


if __name__ == "__main__":
    sys.exit(main())
