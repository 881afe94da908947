"""Measure training cost: seconds of forward + RNN-T loss + backward + Adam per hour of audio.

    python -m int4rt_train.throughput --config configs/small.json --batch 16 --seconds 4

Random features and labels of the given shape (4 s of audio ≈ 15 characters per second, the
rate of the synthetic corpus), one thread unless ``--threads``. Prints the median of
``--repeats`` steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from int4rt.model.config import RnntConfig, load_config
from int4rt_train.model import Transducer
from int4rt_train.rnnt_loss import rnnt_loss

CHARS_PER_SECOND = 15.0


def measure(config: RnntConfig, batch: int, seconds: float, repeats: int) -> list[float]:
    """Step times in seconds of ``repeats`` timed steps (after one warm-up step)."""
    torch.manual_seed(0)
    model = Transducer(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames = int(seconds * 100)
    count = int(seconds * CHARS_PER_SECOND)
    features = torch.randn(batch, frames, config.frontend.feature_dim)
    lengths = torch.full((batch,), frames)
    labels = torch.randint(1, len(config.vocab), (batch, count))
    label_lengths = torch.full((batch,), count)
    times = []
    for step in range(repeats + 1):
        started = time.perf_counter()
        log_probs, enc_lengths = model(features, lengths, labels)
        loss = rnnt_loss(log_probs, labels, enc_lengths, label_lengths, config.blank_id).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> None:
    """Print parameters, median step time and seconds per hour of audio."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.throughput")
    parser.add_argument("--config", required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, help="override encoder.hidden_size")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if not isinstance(config, RnntConfig):
        parser.error("--config must be an rnnt config")
    if args.hidden:
        from dataclasses import replace
        config = replace(config, encoder=replace(config.encoder, hidden_size=args.hidden))
    params = sum(p.numel() for p in Transducer(config).parameters())
    times = measure(config, args.batch, args.seconds, args.repeats)
    median = statistics.median(times)
    audio_hours = args.batch * args.seconds / 3600
    print(f"params {params / 1e6:.2f} M, threads {args.threads}, batch {args.batch} x "
          f"{args.seconds:g} s: median step {median:.2f} s (of {[round(t, 2) for t in times]}), "
          f"{median / audio_hours / 60:.1f} min per hour of audio")


if __name__ == "__main__":
    main()
