"""Encoder speed: int4rt's Numba path on a random paper-size model vs torch fp32 nn.LSTM.

10 s of audio = 500 encoder frames of 240 features (20 ms), one thread, median of repeats.
Run: ``python benchmarks/bench_encoder.py [--config configs/paper.json] [--repeats 5]``.
The peer (torch ``nn.LSTM`` with the same sizes, fp32) runs in the same process when torch is
installed (the ``dev`` or ``peers`` extra).
"""

from __future__ import annotations

from timing import median_seconds, pin_one_thread

pin_one_thread()

import argparse
import json
from pathlib import Path

import numpy as np

from int4rt.model.config import load_config
from int4rt.model.random_model import random_model


def torch_peer(model, frames: int):
    """A torch fp32 nn.LSTM encoder of the same shape, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    first = model.encoder.layers[0]
    lstm = torch.nn.LSTM(first.cells[0].input_size, first.cells[0].hidden_size,
                         num_layers=len(model.encoder.layers),
                         bidirectional=first.bidirectional).eval()
    x = torch.randn(frames, 1, first.cells[0].input_size)

    def run() -> None:
        with torch.inference_mode():
            lstm(x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(Path(__file__).parents[1] / "configs/paper.json"))
    parser.add_argument("--frames", type=int, default=500, help="encoder input frames (20 ms)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = random_model(load_config(args.config), seed=0)
    first = model.encoder.layers[0]
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((args.frames * first.stack, model.frontend.feature_dim))
    feats = feats.astype(np.float32)
    results = {"int4rt numba": median_seconds(lambda: model.encode(feats), args.repeats)}
    peer = torch_peer(model, args.frames)
    if peer is not None:
        results["torch fp32 nn.LSTM (peer)"] = median_seconds(peer, args.repeats)
    print(json.dumps({"config": args.config, "frames": args.frames, "threads": 1,
                      "median_seconds": results}, indent=2))


if __name__ == "__main__":
    main()
