"""QAT fine-tuning of the RNN-T, bit-exact with int4rt, resumable (docs/TRAINING.md §6).

    OMP_NUM_THREADS=1 nice -n 5 python -m int4rt_train.qat --corpus /work/corpus \\
        --config configs/small.json --init-from models/checkpoints/small-fp32 \\
        --run /work/runs/small-qat
    python -m int4rt_train.qat --config configs/small.json --run /work/runs/small-qat \\
        --export small-qat.safetensors
    int4rt convert small-qat.safetensors --config configs/small.json -o small-qat-int4.safetensors

A fresh run loads the FP32 weights of ``--init-from``, sets every weight scale by SAWB (or MSE,
``--scale-init``) per gate block and every activation clip to the 0.1 / 99.9 percentiles of
the FP32 model's values on ``--calib-utterances`` training utterances, then fine-tunes with
the FP32 loop (``int4rt_train.train``: checkpoints, resume, logs, dev WER), here on the
engine's own greedy output. ``--distill-weight W`` adds W × the lattice KL divergence from
the FP32 teacher (``--distill-from``, default ``--init-from``) to the QAT model
(``int4rt_train.distill``). ``--export`` writes the newest checkpoint's QAT tensors
(weights, ``<weight>_scale``, clips) for ``int4rt convert``; convert it without ``--calib``
(or with ``--cell-scale config``) so that the cell scale is the config's, as in training.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from int4rt.model.config import RnntConfig
from int4rt_train.batches import collate
from int4rt_train.checkpoint import load_checkpoint, newest_checkpoint
from int4rt_train.distill import lattice_kl, load_teacher
from int4rt_train.milestone import export_metadata, provenance
from int4rt_train.model import Transducer
from int4rt_train.qat_layers import SCALE_INIT
from int4rt_train.qat_model import QatCharLm, QatTransducer, calibrate
from int4rt_train.train import (
    ExtraLoss,
    Options,
    Recipe,
    Stop,
    fresh_state,
    load_utterances,
    log,
    option_parser,
    read_weights,
    rnnt_config,
    train,
    training_shards,
)

CALIB_BATCH = 16


@dataclass
class QatOptions(Options):
    """``Options`` with QAT's defaults (no dropout: it would change the integers) and its own."""

    lr: float = 1e-4
    warmup_steps: int = 100
    dropout: float = 0.0
    scale_init: str = "sawb"
    calib_utterances: int = 64
    distill_weight: float = 0.0
    distill_from: Path | None = None


def build(opts: Options) -> tuple[RnntConfig, QatTransducer, torch.optim.Optimizer]:
    """Config, QAT model (scales and clips to be set by ``initial_state`` or a checkpoint), Adam."""
    config = rnnt_config(opts.config)
    torch.manual_seed(opts.seed)
    model = QatTransducer(Transducer(config), config, getattr(opts, "scale_init", "sawb"))
    return config, model, torch.optim.Adam(model.parameters(), lr=opts.lr)


def initial_state(opts: Options, model: torch.nn.Module) -> dict[str, Any]:
    """A fresh QAT run: FP32 weights from ``--init-from``, scales, calibrated clips, step 0."""
    assert isinstance(model, QatTransducer) and isinstance(opts, QatOptions)
    if opts.init_from is None:
        raise SystemExit("QAT starts from trained FP32 weights: give --init-from (a milestone "
                         "folder or a checkpoint file)")
    missing, unexpected = model.load_state_dict(read_weights(opts.init_from), strict=False)
    if unexpected or any(not name.startswith("clips.") and not name.endswith("_scale")
                         for name in missing):
        raise SystemExit(f"{opts.init_from}: not an FP32 model of {opts.config} "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.init_scales(opts.scale_init)
    shards = training_shards(opts)
    utterances = load_utterances(shards[:1], model.config.vocab)
    rng = np.random.default_rng(opts.seed)
    chosen = [utterances[i] for i in rng.permutation(len(utterances))[:opts.calib_utterances]]
    batches = []
    for start in range(0, len(chosen), CALIB_BATCH):
        features, lengths, labels, label_lengths = collate(chosen[start:start + CALIB_BATCH],
                                                           model.config.vocab)
        batches.append((features, lengths, labels, label_lengths))
    ranges = calibrate(model, batches, opts.seed)
    log(opts.run, {"event": "calibrated", "utterances": len(chosen),
                   "clips": {k: [round(v, 4) for v in r] for k, r in ranges.items()}})
    return {**fresh_state(), **origin_state(opts.init_from)}


def origin_state(init_from: Path) -> dict[str, Any]:
    """What a QAT run's state records about the FP32 weights it started from (``init_from``,
    ``init_state``: their ``provenance``); ``--export`` passes it on to ``int4rt_train.ship``."""
    return {"init_from": str(init_from), "init_state": provenance(init_from)}


def distillation(opts: Options, config: RnntConfig) -> ExtraLoss | None:
    """QAT's extra loss: ``distill_weight`` × ``lattice_kl`` from the FP32 teacher
    (``distill_from``, else ``init_from``) to the QAT model; none at weight 0."""
    assert isinstance(opts, QatOptions)
    if opts.distill_weight < 0:
        raise SystemExit(f"--distill-weight {opts.distill_weight}: must be 0 or more")
    if opts.distill_weight == 0:
        return None
    source = opts.distill_from or opts.init_from
    if source is None:
        raise SystemExit("--distill-weight needs a teacher: give --distill-from (or --init-from)")
    if not source.exists():
        raise SystemExit(f"--distill-from {source}: no such milestone folder or safetensors file")
    teacher = load_teacher(read_weights(source), config, source)
    weight = opts.distill_weight

    def term(features: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
             label_lengths: torch.Tensor, log_probs: torch.Tensor,
             enc_lengths: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target, _ = teacher(features, lengths, labels)
        return weight * lattice_kl(target, log_probs, enc_lengths, label_lengths)

    return term


QAT = Recipe(build, initial_state, distillation)


def export_run(model: QatTransducer | QatCharLm, source: Path, output: Path) -> Path:
    """Write the QAT checkpoint ``int4rt convert`` reads (``export_tensors``; metadata: the
    run's ``provenance``) of ``source`` (a run folder, its newest checkpoint, or a checkpoint
    file) loaded into ``model``; return the checkpoint read."""
    checkpoint = newest_checkpoint(source) if source.is_dir() else source
    if checkpoint is None:
        raise SystemExit(f"no checkpoint in {source}")
    load_checkpoint(checkpoint, model, None)
    save_file(model.export_tensors(), str(output), metadata=export_metadata(checkpoint))
    return checkpoint


def export(config_path: Path, source: Path, output: Path) -> Path:
    """``export_run`` of a QAT RNN-T run (``config_path`` its config)."""
    config = rnnt_config(config_path)
    return export_run(QatTransducer(Transducer(config), config), source, output)


def main(argv: list[str] | None = None) -> int:
    """Fine-tune (or, with ``--export``, export) a QAT RNN-T."""
    parser = option_parser("python -m int4rt_train.qat", __doc__ or "",
                           QatOptions(Path(), Path(), Path()), corpus_required=False)
    parser.add_argument("--scale-init", choices=SCALE_INIT, default="sawb",
                        help="initial weight scales per gate block (a fresh run)")
    parser.add_argument("--calib-utterances", type=int, default=64,
                        help="training utterances whose FP32 values set the initial clips")
    parser.add_argument("--distill-weight", type=float, default=0.0, metavar="W",
                        help="add W x the lattice KL divergence from the FP32 teacher (default 0: "
                             "none)")
    parser.add_argument("--distill-from", type=Path, metavar="WEIGHTS",
                        help="the FP32 teacher (a milestone folder or checkpoint file; default "
                             "--init-from)")
    parser.add_argument("--export", type=Path, metavar="OUT",
                        help="write the run's newest QAT checkpoint for int4rt convert and exit")
    args = vars(parser.parse_args(argv))
    output = args.pop("export")
    if output is not None:
        source = export(args["config"], args["run"], output)
        print(f"wrote {output} from {source}", flush=True)
        return 0
    if args["corpus"] is None:
        parser.error("--corpus is required to train")
    opts = QatOptions(**args)
    Stop.install()
    state = train(opts, QAT)
    print(f"stopped at step {state['step']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
