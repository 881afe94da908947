"""Train a character LSTM LM on a text file, resumable (docs/TRAINING.md §5).

    nice -n 5 python -m int4rt_train.lm --text /work/corpus/text/bible-lm.txt \\
        --dev-text /work/corpus/text/bible-dev.txt --config configs/lm-small.json \\
        --run /work/runs/lm-bible

The external (target-domain) LM trains on ``bible-lm.txt``, the source LM on the RNN-T's
training transcripts ``fortunes-train.txt``; neither file holds a held-out or test sentence.
Each sentence is read as id 0 (the boundary, what int4rt's LM fusion feeds first) followed by
its characters; the LM learns the next character after every prefix. Checkpoints, resume and
logs work as in ``int4rt_train.train``; dev bits per character are logged every epoch and
every ``--dev-minutes``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from int4rt.model.config import LmConfig, load_config
from int4rt_train.batches import text_ids
from int4rt_train.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    newest_checkpoint,
    save_checkpoint,
)
from int4rt_train.model import CharLm


@dataclass
class LmOptions:
    """Everything ``train_lm`` needs (the command line's flags)."""

    text: Path
    config: Path
    run: Path
    dev_text: Path | None = None
    seed: int = 0
    threads: int = 1
    lr: float = 2e-3
    batch: int = 64
    clip_norm: float = 1.0
    epochs: int = 20
    checkpoint_minutes: float = 10.0
    dev_minutes: float = 30.0
    log_every: int = 100
    max_steps: int | None = None


def read_sentences(path: Path, vocab: tuple[str, ...]) -> list[list[int]]:
    """Id sequences [0, c1, …, cn] of the file's non-empty lines."""
    return [[0, *text_ids(line, vocab)] for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def pad(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs [B, N] (0-padded) and targets [B, N] (−100 where there is no next character)."""
    width = max(len(s) for s in sequences) - 1
    inputs = torch.zeros(len(sequences), width, dtype=torch.long)
    targets = torch.full((len(sequences), width), -100, dtype=torch.long)
    for row, seq in enumerate(sequences):
        inputs[row, :len(seq) - 1] = torch.tensor(seq[:-1])
        targets[row, :len(seq) - 1] = torch.tensor(seq[1:])
    return inputs, targets


@torch.no_grad()
def bits_per_char(model: CharLm, sentences: list[list[int]], batch: int = 64) -> float:
    """Mean −log2 P(next character) over every character of ``sentences``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(sentences), batch):
        inputs, targets = pad(sentences[start:start + batch])
        logits = model(inputs)
        total += float(torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), targets, ignore_index=-100, reduction="sum"))
        count += int((targets != -100).sum())
    model.train()
    return total / count / math.log(2)


def _log(run: Path, record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def train_lm(opts: LmOptions) -> dict[str, Any]:
    """Run (or resume) LM training for ``epochs`` or ``max_steps``; return the final state."""
    torch.set_num_threads(opts.threads)
    opts.run.mkdir(parents=True, exist_ok=True)
    config = load_config(opts.config)
    if not isinstance(config, LmConfig):
        raise SystemExit(f"{opts.config}: LM training needs an lm config")
    torch.manual_seed(opts.seed)
    model = CharLm(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    newest = newest_checkpoint(opts.run)
    state: dict[str, Any] = {"step": 0, "epoch": 0, "position": 0, "dev_bpc": None}
    if newest is not None:
        state = load_checkpoint(newest, model, optimizer)
    sentences = read_sentences(opts.text, config.vocab)
    dev = read_sentences(opts.dev_text, config.vocab) if opts.dev_text else []
    last_save = last_dev = time.time()
    losses: list[float] = []
    while state["epoch"] < opts.epochs:
        order = np.random.default_rng([opts.seed, state["epoch"]]).permutation(len(sentences))
        starts = range(0, len(order), opts.batch)
        while state["position"] < len(starts):
            chosen = order[starts[state["position"]]:starts[state["position"]] + opts.batch]
            inputs, targets = pad([sentences[i] for i in chosen])
            loss = torch.nn.functional.cross_entropy(model(inputs).transpose(1, 2), targets,
                                                     ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_norm)
            optimizer.step()
            losses.append(loss.item())
            state["step"] += 1
            state["position"] += 1
            if state["step"] % opts.log_every == 0:
                _log(opts.run, {"step": state["step"], "epoch": state["epoch"],
                                "train_bpc": round(sum(losses) / len(losses) / math.log(2), 4),
                                "time": time.strftime("%H:%M:%S", time.gmtime())})
                losses = []
            if dev and time.time() - last_dev >= opts.dev_minutes * 60:
                state["dev_bpc"] = bits_per_char(model, dev)
                _log(opts.run, {"step": state["step"], "dev_bpc": round(state["dev_bpc"], 4)})
                last_dev = time.time()
            done = opts.max_steps is not None and state["step"] >= opts.max_steps
            if done or time.time() - last_save >= opts.checkpoint_minutes * 60:
                save_checkpoint(checkpoint_path(opts.run, state["step"]), model, optimizer, state)
                last_save = time.time()
            if done:
                return state
        state["epoch"] += 1
        state["position"] = 0
        if dev:
            state["dev_bpc"] = bits_per_char(model, dev)
            _log(opts.run, {"epoch": state["epoch"], "dev_bpc": round(state["dev_bpc"], 4)})
    save_checkpoint(checkpoint_path(opts.run, state["step"]), model, optimizer, state)
    return state


def main(argv: list[str] | None = None) -> int:
    """Parse flags into ``LmOptions`` and train."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.lm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = LmOptions(Path(), Path(), Path())
    parser.add_argument("--text", type=Path, required=True, help="training sentences, one a line")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--dev-text", type=Path)
    for name in ("seed", "threads", "batch", "epochs", "log_every", "max_steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int,
                            default=getattr(defaults, name))
    for name in ("lr", "clip_norm", "checkpoint_minutes", "dev_minutes"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float,
                            default=getattr(defaults, name))
    state = train_lm(LmOptions(**vars(parser.parse_args(argv))))
    print(f"stopped at step {state['step']}, dev bits per character {state['dev_bpc']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
