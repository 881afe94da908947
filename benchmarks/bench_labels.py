"""Decoding time per label: short vs long label sequences (greedy search, tiny random model).

Decoding is meant to be linear in the number of labels: the time per label at ~24k labels
should be close to the time per label at ~1.5k. The search alone is timed: the encoder
projection of random features is computed once, outside the timing. One thread, median of
repeats. Run: ``python benchmarks/bench_labels.py [--repeats 3] [--frames 1000 16000]``.
"""

from __future__ import annotations

from timing import median_seconds, pin_one_thread

pin_one_thread()

import argparse
import json

import numpy as np

from int4rt.decode import DecodeOptions, search
from int4rt.model.config import load_config
from int4rt.model.random_model import random_model


def main() -> None:
    """Print microseconds per label for each frame count and the ratio long / short."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/tiny.json")
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 16000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = random_model(load_config(args.config), 0)
    options = DecodeOptions()
    rng = np.random.default_rng(0)
    rows = []
    for frames in args.frames:
        features = rng.standard_normal((frames, model.frontend.feature_dim)).astype(np.float32)
        enc_proj = model.project_encoder(model.encode(features)[0])
        labels = len(search(model, enc_proj, options).tokens)

        def run(enc_proj: np.ndarray = enc_proj) -> None:
            search(model, enc_proj, options)

        seconds = median_seconds(run, args.repeats)
        rows.append({"frames": frames, "labels": labels, "seconds": round(seconds, 3),
                     "us_per_label": round(1e6 * seconds / max(labels, 1), 1)})
    rows.append({"ratio_last_to_first": round(rows[-1]["us_per_label"]
                                              / rows[0]["us_per_label"], 3)})
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
