"""Greedy FP32 WER/CER of a checkpoint or milestone on corpus evaluation sets.

    python -m int4rt_train.evaluate --weights models/checkpoints/small-fp32 \\
        --config configs/small.json --corpus /work/corpus --sets dev-fortunes test-fortunes-clean

Decodes each set's feature shard (the same features the engine computes from its WAVs) with the
PyTorch model's batched greedy search; prints one JSON line per set, and with ``--by-voice``
one more per synthesizer voice of the set (``flite:slt``, ``espeak:m3``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from int4rt.metrics import cer, wer
from int4rt.model.config import RnntConfig, load_config
from int4rt_train.checkpoint import model_tensors
from int4rt_train.milestone import read_milestone
from int4rt_train.model import Transducer
from int4rt_train.train import greedy_texts, load_utterances


def main(argv: list[str] | None = None) -> int:
    """Load the weights, decode every set, print WER and CER."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True,
                        help="a milestone folder or a ckpt-*.safetensors file")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--sets", nargs="+", default=["dev-fortunes"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--by-voice", action="store_true",
                        help="also score each synthesizer voice of a set on its own")
    args = parser.parse_args(argv)
    if not args.weights.exists():
        parser.error(f"--weights {args.weights}: no such milestone folder or checkpoint file")
    missing = [name for name in args.sets
               if not (args.corpus / "sets" / name / "features.jsonl").is_file()]
    if missing:
        parser.error(f"no feature shard for {', '.join(missing)} in {args.corpus / 'sets'}; "
                     "build the corpus with python -m int4rt_train.data")
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if not isinstance(config, RnntConfig):
        parser.error("--config must be an rnnt config")
    model = Transducer(config)
    model.load_state_dict(read_milestone(args.weights) if args.weights.is_dir()
                          else model_tensors(args.weights))
    for name in args.sets:
        stem = args.corpus / "sets" / name / "features"
        utterances = load_utterances([stem], config.vocab, max_frames=None)
        hyps = greedy_texts(model, utterances, config.vocab)
        groups = {"": list(range(len(utterances)))}
        if args.by_voice:
            voices = voice_families(stem.with_suffix(".jsonl"))
            for index, utt in enumerate(utterances):
                groups.setdefault(voices[utt.uid], []).append(index)
        for voice, members in groups.items():
            refs = [utterances[i].text for i in members]
            outs = [hyps[i] for i in members]
            print(json.dumps({"set": name, **({"voice": voice} if voice else {}),
                              "utterances": len(members), "wer": round(100 * wer(refs, outs), 2),
                              "cer": round(100 * cer(refs, outs), 2),
                              "example": f"{refs[0]} => {outs[0]}"}), flush=True)
    return 0


def voice_families(manifest: Path) -> dict[str, str]:
    """Utterance id → its voice without rate, pitch or accent (``flite:slt``, ``espeak:m3``;
    ``unknown`` for a row without a ``voice`` field, as in a manifest not written by
    ``int4rt_train.data``)."""
    families = {}
    with open(manifest, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if "voice" not in row:
                families[row["id"]] = "unknown"
                continue
            engine, name = row["voice"].split(":")[:2]
            variant = name.partition("+")[2] if engine == "espeak" else name
            families[row["id"]] = f"{engine}:{variant or 'default'}"
    return families


if __name__ == "__main__":
    sys.exit(main())
