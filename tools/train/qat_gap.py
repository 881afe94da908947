"""FP32 against an INT4 model on whole evaluation sets: the same search, per set and per voice.

    python -m int4rt_train.qat_gap --fp32 models/checkpoints/small-fp32 \\
        --int4 int4rt/default_model/model.safetensors --config configs/small.json \\
        --corpus /work/corpus --sets test-fortunes-clean eval-heldout-clean --beam 8 --by-voice

The accuracy block (docs/RESULTS.md) scores the first 100 utterances of a set over a grid of
LMs and beams; this scores every utterance of a set at one search without an LM, which is what
the "INT4 QAT within 0.3 of FP32" floor needs (docs/TRAINING.md §6, "Measuring the gap"). Both
models read the features int4rt computes from each WAV and go through the accuracy block's
``System.decode``: the FP32 checkpoint as the converter's float model (``float_search``), the
INT4 file on the Numba kernels. One JSON line per set, and with ``--by-voice`` one per voice
family of the set, each with word counts and errors so that rows add up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from int4rt.errors import Int4rtError
from int4rt.frontend import load_features
from int4rt.metrics import word_errors
from int4rt.model.container import load_model
from int4rt.model.rnnt import RnntModel
from int4rt_train.accuracy import System, first_items, plain_checkpoint
from int4rt_train.evaluate import voice_families
from int4rt_train.float_search import load_float


def parser() -> argparse.ArgumentParser:
    """The command line."""
    result = argparse.ArgumentParser(prog="python -m int4rt_train.qat_gap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--fp32", type=Path, required=True,
                        help="FP32 weights: a milestone folder or a checkpoint file")
    result.add_argument("--int4", type=Path, required=True, help="an int4rt RNN-T model file")
    result.add_argument("--config", type=Path, required=True, help="the FP32 model's config")
    result.add_argument("--corpus", type=Path, required=True)
    result.add_argument("--sets", nargs="+", default=["test-fortunes-clean"])
    result.add_argument("--method", choices=("greedy", "beam", "alsd"), default="alsd")
    result.add_argument("--beam", type=int, default=8)
    result.add_argument("--limit", type=int, help="only the first N utterances of a set by id")
    result.add_argument("--by-voice", action="store_true",
                        help="also one line per voice family of each set")
    result.add_argument("--work", type=Path, default=Path("/tmp/int4rt-qat-gap"),
                        help="folder for the FP32 milestone merged into one file")
    return result


def _row(name: str, voice: str | None, scores: list[tuple[int, int, int]]) -> dict:
    words = sum(s[0] for s in scores)
    fp32, int4 = sum(s[1] for s in scores), sum(s[2] for s in scores)

    def rate(errors: int) -> float | None:
        return round(100 * errors / words, 2) if words else None

    return {"set": name, **({"voice": voice} if voice else {}), "utterances": len(scores),
            "words": words, "fp32_errors": fp32, "int4_errors": int4, "fp32_wer": rate(fp32),
            "int4_wer": rate(int4), "gap": rate(int4 - fp32)}


def main(argv: list[str] | None = None) -> int:
    """Decode every set with both models; print one JSON line per set (and voice)."""
    command = parser()
    args = command.parse_args(argv)
    if args.beam < 1 or (args.limit is not None and args.limit < 1):
        command.error("--beam and --limit must be 1 or more")
    for path, flag in ((args.fp32, "--fp32"), (args.int4, "--int4")):
        if not path.exists():
            raise SystemExit(f"qat_gap: {flag} {path}: no such file or folder")
    manifests = {name: args.corpus / "sets" / name / "manifest.jsonl" for name in args.sets}
    missing = [name for name, path in manifests.items() if not path.is_file()]
    if missing:
        raise SystemExit(f"qat_gap: no manifest for {', '.join(missing)} in "
                         f"{args.corpus / 'sets'}; build the corpus with python -m "
                         "int4rt_train.data")
    try:
        int4 = load_model(args.int4)
    except Int4rtError as error:
        raise SystemExit(f"qat_gap: --int4 {args.int4}: {error}") from None
    if not isinstance(int4, RnntModel):
        raise SystemExit(f"qat_gap: --int4 {args.int4} is not an RNN-T model file")
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        fp32 = load_float(plain_checkpoint(args.fp32, args.work, "rnnt-fp32"), args.config,
                          (int4.frontend.cmvn_mean, int4.frontend.cmvn_std))
    except (Int4rtError, ValueError) as error:
        raise SystemExit(f"qat_gap: --fp32 {args.fp32} with --config {args.config}: "
                         f"{error}") from None
    systems = (System("FP32", fp32, None, None, 0, (None, None), method=args.method),
               System("INT4", int4, None, None, 0, (None, None), method=args.method))
    for name, manifest in manifests.items():
        voices = voice_families(manifest)
        groups: dict[str, list[tuple[int, int, int]]] = {}
        for item in first_items(manifest, args.limit):
            features = load_features(item.path, int4.frontend)
            counts = [word_errors(item.reference or "",
                                  system.decode(system.encode(features), "none", args.beam))
                      for system in systems]
            score = (counts[0].ref_length, counts[0].errors, counts[1].errors)
            groups.setdefault("", []).append(score)
            if args.by_voice:
                groups.setdefault(voices.get(Path(item.path).stem, "unknown"), []).append(score)
        for voice, scores in sorted(groups.items()):
            print(json.dumps(_row(name, voice or None, scores)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
