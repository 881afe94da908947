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

QAT (docs/TRAINING.md §5, §6): ``--qat --init-from <FP32 LM run, checkpoint or milestone>``
fine-tunes ``QatCharLm`` (the engine's integers in the forward, straight-through gradients)
from the FP32 weights, with SAWB (or MSE, ``--scale-init``) weight scales and activation clips
calibrated on ``--calib-sentences`` training sentences; the same loop, resumable, its dev bits
per character those of the engine's own log-probabilities. ``--export OUT`` writes the run's
newest checkpoint as the converter's QAT checkpoint (learned scales and clips):

    nice -n 5 python -m int4rt_train.lm --qat --init-from /work/runs/lm-bible \\
        --text /work/corpus/text/bible-lm.txt --dev-text /work/corpus/text/bible-dev.txt \\
        --config configs/lm-small.json --run /work/runs/lm-bible-qat --epochs 1
    python -m int4rt_train.lm --qat --config configs/lm-small.json --run /work/runs/lm-bible-qat \\
        --export lm-bible-qat.safetensors
    int4rt convert lm-bible-qat.safetensors --config configs/lm-small.json \\
        -o lm-bible-qat-int4.safetensors --cell-scale config
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
from int4rt_train.qat import export_run, origin_state
from int4rt_train.qat_layers import SCALE_INIT
from int4rt_train.qat_model import QatCharLm, calibrate
from int4rt_train.train import read_weights

QAT_LR = 2e-4  # the default learning rate of a QAT run (FP32: 2e-3)


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
    qat: bool = False
    init_from: Path | None = None
    scale_init: str = "sawb"
    calib_sentences: int = 256


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


def next_char_log_probs(model: CharLm | QatCharLm, inputs: torch.Tensor) -> torch.Tensor:
    """log P(next character) [B, N, V] after each prefix: the FP32 LM's log-softmax, or the QAT
    LM's own output (the engine's log-probabilities, ARITHMETIC.md §10)."""
    out = model(inputs)
    return out if isinstance(model, QatCharLm) else out.log_softmax(-1)


def nll(model: CharLm | QatCharLm, inputs: torch.Tensor, targets: torch.Tensor,
        reduction: str = "mean") -> torch.Tensor:
    """Negative log-likelihood (nats) of ``targets`` (−100: none) under ``model``."""
    return torch.nn.functional.nll_loss(next_char_log_probs(model, inputs).transpose(1, 2),
                                        targets, ignore_index=-100, reduction=reduction)


@torch.no_grad()
def bits_per_char(model: CharLm | QatCharLm, sentences: list[list[int]], batch: int = 64
                  ) -> float:
    """Mean −log2 P(next character) over every character of ``sentences`` (a QAT LM: the
    engine's log-probabilities)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(sentences), batch):
        inputs, targets = pad(sentences[start:start + batch])
        total += float(nll(model, inputs, targets, "sum"))
        count += int((targets != -100).sum())
    model.train()
    return total / count / math.log(2)


def _log(run: Path, record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def lm_config(path: Path) -> LmConfig:
    """The LM config at ``path`` (an RNN-T config is an error)."""
    config = load_config(path)
    if not isinstance(config, LmConfig):
        raise SystemExit(f"{path}: LM training needs an lm config")
    return config


def build(opts: LmOptions) -> tuple[LmConfig, CharLm | QatCharLm]:
    """Config and model (seeded initialization): ``CharLm``, or with ``qat`` a ``QatCharLm``
    whose scales and clips ``initial_state`` or a checkpoint sets."""
    config = lm_config(opts.config)
    torch.manual_seed(opts.seed)
    model = CharLm(config)
    return config, QatCharLm(model, config, opts.scale_init) if opts.qat else model


def initial_state(opts: LmOptions, model: CharLm | QatCharLm,
                  sentences: list[list[int]]) -> dict[str, Any]:
    """A fresh run's state at step 0; a QAT run first loads the FP32 weights of ``init_from``
    (a run folder's newest checkpoint, a checkpoint file or a milestone folder), sets the
    weight scales and calibrates the clips on ``calib_sentences`` of ``sentences``."""
    state: dict[str, Any] = {"step": 0, "epoch": 0, "position": 0, "dev_bpc": None}
    if not isinstance(model, QatCharLm):
        return state
    if opts.init_from is None:
        raise SystemExit("LM QAT starts from trained FP32 weights: give --init-from (a run "
                         "folder, a checkpoint file or a milestone folder)")
    source = opts.init_from
    if source.is_dir() and not (source / "milestone.json").is_file():
        source = newest_checkpoint(source) or source / "(no checkpoint)"
    if not source.exists():
        raise SystemExit(f"{opts.init_from}: no checkpoint to start from")
    missing, unexpected = model.load_state_dict(read_weights(source), strict=False)
    if unexpected or any(not name.startswith("clips.") and not name.endswith("_scale")
                         for name in missing):
        raise SystemExit(f"{source}: not an FP32 LM of {opts.config} "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.init_scales(opts.scale_init)
    order = np.random.default_rng(opts.seed).permutation(len(sentences))
    ranges = calibrate(model, [(torch.tensor([sentences[i]]),)
                               for i in order[:opts.calib_sentences]], opts.seed)
    _log(opts.run, {"event": "calibrated", "sentences": min(len(order), opts.calib_sentences),
                    "clips": {k: [round(v, 4) for v in r] for k, r in ranges.items()}})
    return {**state, **origin_state(source)}


def train_lm(opts: LmOptions) -> dict[str, Any]:
    """Run (or resume) LM training for ``epochs`` or ``max_steps``; return the final state."""
    torch.set_num_threads(opts.threads)
    opts.run.mkdir(parents=True, exist_ok=True)
    config, model = build(opts)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    sentences = read_sentences(opts.text, config.vocab)
    newest = newest_checkpoint(opts.run)
    if newest is not None:
        state = load_checkpoint(newest, model, optimizer)
    else:
        state = initial_state(opts, model, sentences)
        _log(opts.run, {"event": "started", "options": {k: str(v) for k, v in vars(opts).items()},
                        "params": sum(p.numel() for p in model.parameters())})
    dev = read_sentences(opts.dev_text, config.vocab) if opts.dev_text else []
    last_save = last_dev = time.time()
    losses: list[float] = []
    while state["epoch"] < opts.epochs:
        order = np.random.default_rng([opts.seed, state["epoch"]]).permutation(len(sentences))
        starts = range(0, len(order), opts.batch)
        while state["position"] < len(starts):
            chosen = order[starts[state["position"]]:starts[state["position"]] + opts.batch]
            inputs, targets = pad([sentences[i] for i in chosen])
            loss = nll(model, inputs, targets)
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


def export(config_path: Path, source: Path, output: Path) -> Path:
    """``int4rt_train.qat.export_run`` of a QAT LM run (``config_path`` its config): the
    converter's QAT checkpoint with the run's provenance; returns the checkpoint read."""
    config = lm_config(config_path)
    return export_run(QatCharLm(CharLm(config), config), source, output)


def main(argv: list[str] | None = None) -> int:
    """Parse flags into ``LmOptions`` and train (or, with ``--export``, export a QAT run)."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.lm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = LmOptions(Path(), Path(), Path())
    parser.add_argument("--text", type=Path, help="training sentences, one a line")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--dev-text", type=Path)
    for name in ("seed", "threads", "batch", "epochs", "log_every", "max_steps",
                 "calib_sentences"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int,
                            default=getattr(defaults, name))
    for name in ("clip_norm", "checkpoint_minutes", "dev_minutes"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float,
                            default=getattr(defaults, name))
    parser.add_argument("--lr", type=float,
                        help=f"Adam's learning rate (default {defaults.lr}; QAT {QAT_LR})")
    parser.add_argument("--qat", action="store_true",
                        help="QAT fine-tuning from --init-from (bit-exact with int4rt)")
    parser.add_argument("--init-from", type=Path,
                        help="QAT: the FP32 LM (run folder, checkpoint file or milestone folder)")
    parser.add_argument("--scale-init", choices=SCALE_INIT, default=defaults.scale_init,
                        help="QAT: initial weight scales per gate block (a fresh run)")
    parser.add_argument("--export", type=Path, metavar="OUT",
                        help="QAT: write the run's newest checkpoint for int4rt convert and exit")
    args = vars(parser.parse_args(argv))
    output = args.pop("export")
    if output is not None:
        if not args["qat"]:
            parser.error("--export writes a QAT run's checkpoint: give --qat")
        source = export(args["config"], args["run"], output)
        print(f"wrote {output} from {source}", flush=True)
        return 0
    if args["text"] is None:
        parser.error("--text is required to train")
    if args["lr"] is None:
        args["lr"] = QAT_LR if args["qat"] else defaults.lr
    state = train_lm(LmOptions(**args))
    print(f"stopped at step {state['step']}, dev bits per character {state['dev_bpc']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
