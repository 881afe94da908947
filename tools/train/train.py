"""Train the FP32 RNN-T on the synthetic corpus, resumable at any point (docs/TRAINING.md §3).

    nohup nice -n 5 python -m int4rt_train.train --corpus /work/corpus \\
        --config configs/small.json --run /work/runs/small >> /work/runs/small/train.log 2>&1 &

One thread (``--threads``). Every ``--checkpoint-minutes`` (and on SIGTERM/SIGINT) it writes
``<run>/ckpt-<step>.safetensors`` (model, Adam state, step, RNG; safetensors only) and on
start it resumes from the newest one: same epoch, same batch order, same position. An epoch
uses the training shards complete when it starts, so the corpus may keep growing. Every
``--dev-minutes`` it decodes the dev set greedily and logs WER/CER to ``<run>/metrics.jsonl``;
the learning rate halves after ``--patience`` evaluations without a better dev WER.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from int4rt.metrics import cer, wer
from int4rt.model.config import RnntConfig, load_config
from int4rt_train.batches import (
    collate,
    ids_text,
    make_batches,
    repeat_voices,
    voice_repeats,
)
from int4rt_train.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    model_tensors,
    newest_checkpoint,
    save_checkpoint,
)
from int4rt_train.corpus import Utterance, complete_shards, read_shard
from int4rt_train.milestone import read_milestone
from int4rt_train.model import Transducer
from int4rt_train.rnnt_loss import rnnt_loss
from int4rt_train.spec_augment import MaskPolicy, mask_features, warp_features

MAX_FRAMES = 1600  # utterances longer than 16 s are skipped (lattice memory)
CMVN_SHARDS = 4


@dataclass
class Options:
    """Everything ``train`` needs (the command line's flags)."""

    corpus: Path
    config: Path
    run: Path
    init_from: Path | None = None
    seed: int = 0
    threads: int = 1
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 300
    patience: int = 3
    clip_norm: float = 5.0
    dropout: float = 0.1
    batch_frames: int = 8000
    max_batch: int = 32
    checkpoint_minutes: float = 10.0
    dev_minutes: float = 60.0
    dev_set: str = "dev-fortunes"
    log_every: int = 50
    max_steps: int | None = None
    freq_masks: int = 0
    time_masks: int = 0
    mel_warp: float = 0.0
    repeat_voice: str = ""  # "VOICE_PREFIX=COUNT,...": those voices COUNT times an epoch
    add_set: str = ""  # "SET,...": corpus sets whose utterances join every epoch


def log(run: Path, record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def cmvn_statistics(shards: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation (floored at 1e-5) over every frame of shards."""
    total = None
    squares = None
    count = 0
    for stem in shards:
        for utt in read_shard(stem):
            frames = np.asarray(utt.features, dtype=np.float64)
            total = frames.sum(0) if total is None else total + frames.sum(0)
            squares = (frames ** 2).sum(0) if squares is None else squares + (frames ** 2).sum(0)
            count += frames.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return (torch.tensor(mean, dtype=torch.float32),
            torch.tensor(np.maximum(std, 1e-5), dtype=torch.float32))


def load_utterances(stems: list[Path], vocab: tuple[str, ...],
                    max_frames: int | None = MAX_FRAMES) -> list[Utterance]:
    """Utterances of the shards that fit the vocabulary and, unless ``max_frames`` is None
    (decoding builds no lattice), the lattice limit."""
    symbols = set(vocab)
    return [utt for stem in stems for utt in read_shard(stem)
            if 0 < utt.features.shape[0] and set(utt.text) <= symbols
            and (max_frames is None or utt.features.shape[0] <= max_frames)]


def greedy_texts(model: Transducer, utterances: list[Utterance], vocab: tuple[str, ...],
                 batch: int = 32) -> list[str]:
    """The model's greedy transcript of each utterance (batched by length), in order."""
    model.eval()
    order = sorted(range(len(utterances)), key=lambda i: utterances[i].features.shape[0])
    hyps: dict[int, str] = {}
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        features, lengths, _, _ = collate([utterances[i] for i in chunk], vocab)
        for index, ids in zip(chunk, model.greedy(features, lengths), strict=True):
            hyps[index] = ids_text(ids, vocab)
    model.train()
    return [hyps[i] for i in range(len(utterances))]


def evaluate(model: Transducer, utterances: list[Utterance], vocab: tuple[str, ...],
             batch: int = 32) -> dict[str, float]:
    """Greedy WER and CER (percent) over ``utterances``."""
    refs = [u.text for u in utterances]
    outs = greedy_texts(model, utterances, vocab, batch)
    return {"dev_wer": 100 * wer(refs, outs), "dev_cer": 100 * cer(refs, outs),
            "dev_example": f"{refs[0]} => {outs[0]}"}


def learning_rate(opts: Options, state: dict[str, Any]) -> float:
    """Linear warm-up to ``lr``, then ``lr`` × the plateau factor, floored at ``min_lr``."""
    warm = min(1.0, (state["step"] + 1) / opts.warmup_steps)
    return max(opts.min_lr, opts.lr * state["lr_scale"]) * warm


class Stop:
    """Set by SIGTERM/SIGINT: save a checkpoint after the current step and exit."""

    requested = False

    @classmethod
    def install(cls) -> None:
        def handler(signum: int, frame: object) -> None:
            cls.requested = True
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def rnnt_config(path: Path) -> RnntConfig:
    """The RNN-T config at ``path`` (an LM config is an error)."""
    config = load_config(path)
    if not isinstance(config, RnntConfig):
        raise SystemExit(f"{path}: training needs an rnnt config")
    return config


def build(opts: Options) -> tuple[RnntConfig, Transducer, torch.optim.Optimizer]:
    """Config, model (seeded initialization) and Adam."""
    config = rnnt_config(opts.config)
    torch.manual_seed(opts.seed)
    model = Transducer(config, dropout=opts.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    return config, model, optimizer


def training_shards(opts: Options) -> list[Path]:
    """The complete training shards (an error when there is none)."""
    shards = complete_shards(opts.corpus / "train", "train")
    if not shards:
        raise SystemExit(f"no complete training shard in {opts.corpus / 'train'}; run "
                         "python -m int4rt_train.data first")
    return shards


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Model weights of a milestone folder, a checkpoint file or a plain model file."""
    if path.is_dir():
        return read_milestone(path)
    if not path.is_file():
        raise SystemExit(f"--init-from {path}: no such milestone folder or safetensors file")
    return model_tensors(path)


def fresh_state() -> dict[str, Any]:
    """The loop state of a run at step 0."""
    return {"step": 0, "epoch": 0, "position": 0, "epoch_shards": None, "lr_scale": 1.0,
            "best_dev_wer": None, "bad_evals": 0, "audio_seconds": 0.0}


def initial_state(opts: Options, model: Transducer) -> dict[str, Any]:
    """A fresh run: CMVN from the first shards (or ``--init-from`` weights), step 0."""
    shards = training_shards(opts)
    if opts.init_from is not None:
        model.load_state_dict(read_weights(opts.init_from))
    else:
        mean, std = cmvn_statistics(shards[:CMVN_SHARDS])
        model.frontend.cmvn_mean.copy_(mean)
        model.frontend.cmvn_std.copy_(std)
    return fresh_state()


ExtraLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                      torch.Tensor], torch.Tensor]


def no_extra_loss(opts: Options, config: RnntConfig) -> ExtraLoss | None:
    """The FP32 recipe's extra loss term: none."""
    return None


@dataclass(frozen=True)
class Recipe:
    """What the loop trains: ``build`` (config, model, optimizer), ``initial_state`` (set
    up a fresh run's model, return its state) and ``extra_loss`` (a term added to the RNN-T
    loss per character, called with features, lengths, labels, label lengths, log-probabilities
    and encoder lengths; logged as ``extra_loss``). FP32 here; QAT in ``int4rt_train.qat``."""

    build: Callable[[Options], tuple[RnntConfig, torch.nn.Module, torch.optim.Optimizer]]
    initial_state: Callable[[Options, torch.nn.Module], dict[str, Any]]
    extra_loss: Callable[[Options, RnntConfig], ExtraLoss | None] = no_extra_loss


FP32 = Recipe(build, initial_state)


def train(opts: Options, recipe: Recipe = FP32) -> dict[str, Any]:
    """Run (or resume) training until ``max_steps`` or a stop signal; return the final state."""
    torch.set_num_threads(opts.threads)
    try:
        repeats = voice_repeats(opts.repeat_voice)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    added = [opts.corpus / "sets" / name.strip() / "features"
             for name in opts.add_set.split(",") if name.strip()]
    missing = [stem.parent.name for stem in added if not stem.with_suffix(".jsonl").is_file()]
    if missing:
        raise SystemExit(f"--add-set: no set {', '.join(missing)} in {opts.corpus / 'sets'} "
                         "(build it first, e.g. python -m int4rt_train.real_speech)")
    opts.run.mkdir(parents=True, exist_ok=True)
    config, model, optimizer = recipe.build(opts)
    newest = newest_checkpoint(opts.run)
    if newest is not None:
        state = load_checkpoint(newest, model, optimizer)
        log(opts.run, {"event": "resumed", "from": newest.name, "step": state["step"]})
    else:
        state = recipe.initial_state(opts, model)
        log(opts.run, {"event": "started", "options": {k: str(v) for k, v in vars(opts).items()},
                        "params": sum(p.numel() for p in model.parameters())})
    extra_loss = recipe.extra_loss(opts, config)
    dev_stem = opts.corpus / "sets" / opts.dev_set / "features"
    dev = load_utterances([dev_stem], config.vocab) if dev_stem.with_suffix(".jsonl").exists() \
        else []
    last_save = last_dev = time.time()
    window: list[tuple[float, float, float]] = []
    cached: tuple[list[str], list[Utterance]] | None = None
    model.train()
    while True:
        if state["epoch_shards"] is None:
            stems = complete_shards(opts.corpus / "train", "train")
            state["epoch_shards"] = [stem.name for stem in stems]
            state["position"] = 0
        if cached is None or cached[0] != state["epoch_shards"]:
            stems = [opts.corpus / "train" / name for name in state["epoch_shards"]]
            try:
                utterances = repeat_voices(load_utterances(stems + added, config.vocab),
                                           repeats)
            except ValueError as error:
                raise SystemExit(str(error)) from None
            cached = (state["epoch_shards"], utterances)
        utterances = cached[1]
        batches = make_batches([u.features.shape[0] for u in utterances], opts.batch_frames,
                               opts.max_batch, np.random.default_rng([opts.seed, state["epoch"]]))
        while state["position"] < len(batches):
            started = time.time()
            chosen = [utterances[i] for i in batches[state["position"]]]
            features, lengths, labels, label_lengths = collate(chosen, config.vocab)
            if opts.mel_warp:
                features = warp_features(features, lengths, config.frontend.n_mels,
                                         opts.mel_warp)
            if opts.freq_masks or opts.time_masks:
                features = mask_features(features, lengths, model.frontend.cmvn_mean,
                                         config.frontend.n_mels,
                                         MaskPolicy(opts.freq_masks, time_masks=opts.time_masks))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(opts, state)
            log_probs, enc_lengths = model(features, lengths, labels)
            nll = rnnt_loss(log_probs, labels, enc_lengths, label_lengths, config.blank_id)
            per_char = nll.sum() / label_lengths.sum()
            extra = None if extra_loss is None else extra_loss(
                features, lengths, labels, label_lengths, log_probs, enc_lengths)
            loss = per_char if extra is None else per_char + extra
            optimizer.zero_grad()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip_norm)
            optimizer.step()
            state["step"] += 1
            state["position"] += 1
            seconds = float(lengths.sum()) / 100
            state["audio_seconds"] += seconds
            window.append((per_char.item(), 0.0 if extra is None else extra.item(),
                           time.time() - started, seconds))
            if state["step"] % opts.log_every == 0:
                losses, extras, times, audio = zip(*window, strict=True)
                extra_record = {} if extra_loss is None else {
                    "extra_loss": round(sum(extras) / len(extras), 4)}
                log(opts.run, {"step": state["step"], "epoch": state["epoch"],
                                "batch": f"{state['position']}/{len(batches)}",
                                "loss_per_char": round(sum(losses) / len(losses), 4),
                                **extra_record,
                                "grad_norm": round(float(norm), 2),
                                "lr": optimizer.param_groups[0]["lr"],
                                "s_per_step": round(sum(times) / len(times), 2),
                                "min_per_audio_hour": round(sum(times) / sum(audio) * 60, 2),
                                "audio_hours_seen": round(state["audio_seconds"] / 3600, 2),
                                "time": time.strftime("%H:%M:%S", time.gmtime())})
                window = []
            if dev and time.time() - last_dev >= opts.dev_minutes * 60:
                _dev_round(opts, model, dev, config.vocab, state)
                last_dev = time.time()
            done = opts.max_steps is not None and state["step"] >= opts.max_steps
            if done or Stop.requested or time.time() - last_save >= opts.checkpoint_minutes * 60:
                save_checkpoint(checkpoint_path(opts.run, state["step"]), model, optimizer, state)
                last_save = time.time()
            if done or Stop.requested:
                return state
        state["epoch"] += 1
        state["epoch_shards"] = None


def _dev_round(opts: Options, model: Transducer, dev: list[Utterance],
               vocab: tuple[str, ...], state: dict[str, Any]) -> None:
    result = evaluate(model, dev, vocab)
    best = state["best_dev_wer"]
    if best is None or result["dev_wer"] < best:
        state["best_dev_wer"], state["bad_evals"] = result["dev_wer"], 0
    elif result["dev_wer"] < 100.0:  # no decay while the model still emits (almost) nothing
        state["bad_evals"] += 1
        if state["bad_evals"] >= opts.patience:
            state["lr_scale"] *= 0.5
            state["bad_evals"] = 0
    log(opts.run, {"step": state["step"], "epoch": state["epoch"], **result,
                    "best_dev_wer": state["best_dev_wer"], "lr_scale": state["lr_scale"],
                    "time": time.strftime("%H:%M:%S", time.gmtime())})


def option_parser(prog: str, description: str, defaults: Options,
                  corpus_required: bool = True) -> argparse.ArgumentParser:
    """The loop's flags (every field of ``Options``) with ``defaults``."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=corpus_required)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="checkpoint and log folder")
    parser.add_argument("--init-from", type=Path,
                        help="start a new run from these model weights (a milestone folder or a "
                        "checkpoint file) when the run folder has no checkpoint yet")
    for name in ("seed", "threads", "warmup_steps", "patience", "batch_frames", "max_batch",
                 "log_every", "max_steps", "freq_masks", "time_masks"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int,
                            default=getattr(defaults, name))
    for name in ("lr", "min_lr", "clip_norm", "dropout", "checkpoint_minutes", "dev_minutes",
                 "mel_warp"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float,
                            default=getattr(defaults, name))
    parser.add_argument("--dev-set", default=defaults.dev_set)
    parser.add_argument("--repeat-voice", default=defaults.repeat_voice,
                        metavar="VOICE_PREFIX=COUNT,...",
                        help="list the training utterances of these voices COUNT times an epoch "
                        "(voice as in the manifests, e.g. flite:awb=3)")
    parser.add_argument("--add-set", default=defaults.add_set, metavar="SET,...",
                        help="train on these corpus sets too, every epoch (e.g. "
                        "recorded-prompts-adapt); --repeat-voice repeats them")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags into ``Options`` and train."""
    parser = option_parser("python -m int4rt_train.train", __doc__ or "",
                           Options(Path(), Path(), Path()))
    opts = Options(**vars(parser.parse_args(argv)))
    Stop.install()
    state = train(opts)
    print(f"stopped at step {state['step']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
