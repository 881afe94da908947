"""``int4rt convert --random SEED --config CONFIG -o MODEL``: a random model of a config, with
the command line's bit widths, per-layer overrides and cell clip applied (docs/CONVERT.md).

Options that only steer the conversion of a trained checkpoint (calibration, weight and
activation range methods, granularity, report, ...) have no meaning for random weights and
are rejected, never silently ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from int4rt.errors import Int4rtError

# option attribute -> (flag, value that means "not given")
CHECKPOINT_ONLY = {
    "mapping": ("--mapping", None), "calib": ("--calib", None),
    "calib_limit": ("--calib-limit", None), "weight_scale": ("--weight-scale", "mse"),
    "granularity": ("--granularity", "per_row"), "act_range": ("--act-range", "mse"),
    "percentile": ("--percentile", 99.99), "cell_scale": ("--cell-scale", "calibrate"),
    "report": ("--report", None), "plot": ("--plot", False),
    "eval_utterances": ("--eval-utterances", 8),
}


def convert_random(args: argparse.Namespace) -> int:
    """Write the random model ``args`` describe; returns the exit status."""
    given = [flag for name, (flag, unset) in CHECKPOINT_ONLY.items()
             if getattr(args, name) != unset]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise Int4rtError(f"convert --random: {', '.join(given)} {verb} only to converting a "
                          "trained CHECKPOINT; a random model has per-row weight scales and "
                          "no calibration. Drop them, or convert a checkpoint")
    from int4rt.model.container import save_model
    from int4rt.model.random_model import random_model

    config = _config(args)
    save_model(random_model(config, args.random), args.output)
    quant = config.quantization
    clip = f"cell clip {quant.cell_clip} codes" if quant.cell_clip else "no cell clip"
    print(f"wrote {args.output}: random {config.architecture} model of {args.config}, "
          f"seed {args.random} (weights {quant.weight_bits} bits, activations "
          f"{quant.activation_bits} bits, {clip})")
    return 0


def _config(args: argparse.Namespace):  # -> ModelConfig
    """The config file with --weight-bits, --activation-bits, --override, --cell-clip."""
    from int4rt.model.config import load_config

    if args.weight_bits is None and args.activation_bits is None and not args.override \
            and args.cell_clip is None:
        return load_config(args.config)
    try:
        from int4rt_convert import ConvertOptions
        from int4rt_convert.options import load_adjusted_config
        from int4rt_convert.quantizers import cell_clip_code
    except ImportError:
        raise Int4rtError("convert --random: --weight-bits, --activation-bits, --override and "
                          "--cell-clip need the converter (module int4rt_convert, "
                          "tools/convert); install int4rt from its source tree") from None
    config = load_adjusted_config(ConvertOptions(
        checkpoint=Path(), config=Path(args.config), output=Path(args.output),
        weight_bits=args.weight_bits, activation_bits=args.activation_bits,
        overrides=tuple(args.override)))
    if args.cell_clip is None:
        return config
    if not args.cell_clip > 0:
        raise Int4rtError(f"convert: --cell-clip must be positive, got {args.cell_clip!r}")
    quant = config.quantization
    # every LSTM shares the config's cell scale; a clip below one step is rejected (§8.1)
    code = cell_clip_code("--cell-clip", args.cell_clip, quant.cell_scale_log2)
    return dataclasses.replace(config, quantization=dataclasses.replace(quant, cell_clip=code))

