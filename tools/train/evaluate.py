"""Greedy FP32 WER/CER of a checkpoint or milestone on corpus evaluation sets.

    python -m int4rt_train.evaluate --weights models/checkpoints/small-fp32 \\
        --config configs/small.json --corpus /work/corpus --sets dev-fortunes test-fortunes-clean

Decodes each set's feature shard (the same features the engine computes from its WAVs) with the
PyTorch model's batched greedy search; prints one JSON line per set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from int4rt.model.config import RnntConfig, load_config
from int4rt_train.checkpoint import model_tensors
from int4rt_train.milestone import read_milestone
from int4rt_train.model import Transducer
from int4rt_train.train import evaluate, load_utterances


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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if not isinstance(config, RnntConfig):
        parser.error("--config must be an rnnt config")
    model = Transducer(config)
    model.load_state_dict(read_milestone(args.weights) if args.weights.is_dir()
                          else model_tensors(args.weights))
    for name in args.sets:
        utterances = load_utterances([args.corpus / "sets" / name / "features"], config.vocab)
        result = evaluate(model, utterances, config.vocab)
        print(json.dumps({"set": name, "utterances": len(utterances),
                          "wer": round(result["dev_wer"], 2), "cer": round(result["dev_cer"], 2),
                          "example": result["dev_example"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
