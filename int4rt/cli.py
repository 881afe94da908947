"""The ``int4rt`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from int4rt import __version__, accumulator_command
from int4rt.errors import Int4rtError
from int4rt.golden import command as golden_command
from int4rt.golden import user_trace
from int4rt.options import ACTIVATION_RANGES, CELL_SCALES, GRANULARITIES, WEIGHT_SCALES
from int4rt.sweep import add_parser as add_sweep_parser
from int4rt.transcribe import add_parser as add_transcribe_parser


def _case_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 4:
        raise argparse.ArgumentTypeError(f"need at least 4 cases, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``int4rt`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="int4rt",
        description="Integer-only, bit-exact reference engine for 4-bit LSTM RNN-T ASR.",
    )
    parser.add_argument("--version", action="version", version=f"int4rt {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    selftest = subcommands.add_parser(
        "selftest",
        help="check the NumPy reference against the Numba kernels on random and edge inputs",
    )
    selftest.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    selftest.add_argument(
        "--count", type=_case_count, default=100_000,
        help="random requantization cases per rounding mode (default 100000)",
    )
    convert = subcommands.add_parser(
        "convert", help="convert a trained checkpoint to a model file (docs/CONVERT.md), or "
                        "write a random model of a config",
    )
    convert.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                         help="float or QAT checkpoint: .pt/.pth state dict, .safetensors, .npz")
    convert.add_argument("--random", type=int, metavar="SEED",
                         help="instead of a checkpoint: random weights from this seed")
    convert.add_argument("--config", metavar="CONFIG",
                         help="model configuration: a JSON file (configs/*.json) or a built-in "
                              "name (paper, tiny, lm-paper, lm-tiny)")
    convert.add_argument("-o", "--output", metavar="MODEL", help="model file to write")
    convert.add_argument("--mapping", metavar="JSON",
                         help="mapping file renaming checkpoint tensors (examples/mapping_*.json)")
    convert.add_argument("--calib", metavar="PATH",
                         help="calibration set: a folder or a JSONL manifest (features or audio; "
                              "LM: text)")
    convert.add_argument("--calib-limit", type=int, metavar="N",
                         help="use at most N calibration utterances")
    convert.add_argument("--weight-bits", type=int, choices=(4, 8),
                         help="default weight bits (replaces the config's)")
    convert.add_argument("--activation-bits", type=int, choices=(4, 8),
                         help="default activation bits (replaces the config's)")
    convert.add_argument("--override", action="append", default=[], metavar="LAYER=wN,aN",
                         help="per-layer bit widths, e.g. encoder.layer0=w8,a8 (repeatable)")
    convert.add_argument("--weight-scale", choices=WEIGHT_SCALES, default="mse",
                         help="weight clip: max |w|, SAWB or MSE search (default mse)")
    convert.add_argument("--granularity", choices=GRANULARITIES, default="per_row",
                         help="one weight scale per output row or per LSTM gate block")
    convert.add_argument("--act-range", choices=ACTIVATION_RANGES, default="mse",
                         help="activation range from calibration (default mse)")
    convert.add_argument("--percentile", type=float, default=99.99, metavar="P",
                         help="with --act-range percentile: the (100-P)th and Pth percentiles")
    convert.add_argument("--cell-scale", choices=CELL_SCALES, default="calibrate",
                         help="LSTM cell scale: power of two covering the calibrated range, or "
                              "the config's cell_scale_log2")
    convert.add_argument("--cell-clip", type=float, metavar="VALUE",
                         help="clip every LSTM cell state to [-VALUE, VALUE] (float units)")
    convert.add_argument("--report", metavar="JSON",
                         help="report file (default: MODEL's name with .report.json)")
    convert.add_argument("--plot", action="store_true",
                         help="also write a PNG of per-layer SQNR (needs matplotlib)")
    convert.add_argument("--eval-utterances", type=int, default=8, metavar="N",
                         help="calibration utterances run through the integer model for the "
                              "report (default 8)")
    inspect = subcommands.add_parser(
        "inspect", help="show a model file's layers, quantization formats and compression ratio",
    )
    inspect.add_argument("model", metavar="MODEL", help="model file (.safetensors)")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    accumulator_command.add_inspect_options(inspect)
    golden_command.add_parser(subcommands)
    user_trace.add_parser(subcommands)
    add_transcribe_parser(subcommands)
    add_sweep_parser(subcommands)
    return parser


def _convert(args: argparse.Namespace) -> int:
    """``int4rt convert CHECKPOINT ...`` or ``int4rt convert --random SEED ...``."""
    if args.random is None:
        return _convert_checkpoint(args)
    if args.checkpoint is not None:
        raise Int4rtError("convert: give either a CHECKPOINT or --random SEED, not both")
    if args.random < 0:
        raise Int4rtError(f"convert: --random SEED must be >= 0, got {args.random}")
    if args.config is None or args.output is None:
        raise Int4rtError("convert: --random needs --config CONFIG and -o MODEL")
    from int4rt.convert_random import convert_random

    return convert_random(args)


def _convert_checkpoint(args: argparse.Namespace) -> int:
    """A trained checkpoint through ``int4rt_convert`` (docs/CONVERT.md)."""
    if args.checkpoint is None:
        raise Int4rtError("convert: give a CHECKPOINT to convert (or --random SEED)")
    if args.config is None or args.output is None:
        raise Int4rtError("convert: CHECKPOINT needs --config CONFIG and -o MODEL")
    try:
        from int4rt_convert import ConvertOptions, QuantOptions, convert
    except ImportError:
        raise Int4rtError("convert: the converter (module int4rt_convert, tools/convert) is not "
                          "installed; install int4rt from its source tree") from None
    from pathlib import Path

    def path(value: str | None) -> Path | None:
        return None if value is None else Path(value)

    result = convert(ConvertOptions(
        checkpoint=Path(args.checkpoint), config=Path(args.config), output=Path(args.output),
        mapping=path(args.mapping), calibration=path(args.calib),
        calibration_limit=args.calib_limit, weight_bits=args.weight_bits,
        activation_bits=args.activation_bits, overrides=tuple(args.override),
        quant=QuantOptions(weight_scale=args.weight_scale, granularity=args.granularity,
                           activation_range=args.act_range, percentile=args.percentile,
                           cell_scale=args.cell_scale, cell_clip=args.cell_clip),
        report=path(args.report), plot=args.plot, eval_utterances=args.eval_utterances,
        progress=True))
    print(result.table())
    written = [result.model_path, result.report_path, result.plot_path]
    print("wrote " + ", ".join(str(p) for p in written if p is not None))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    """``int4rt inspect MODEL [--json] [--accumulators ...]``."""
    if args.accumulators:
        return accumulator_command.run(args)
    from int4rt.inspect_model import format_report, inspect_model

    report = inspect_model(args.model)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``int4rt``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "selftest":
            from int4rt.selftest import run_selftest

            return run_selftest(seed=args.seed, count=args.count)
        if args.command == "convert":
            return _convert(args)
        if args.command == "inspect":
            return _inspect(args)
        if args.command == "golden":
            return golden_command.run(args)
        if args.command == "trace":
            return user_trace.run(args, "int4rt " + " ".join(argv or sys.argv[1:]))
        if args.command == "transcribe":
            from int4rt.transcribe import run as run_transcribe

            return run_transcribe(args)
        if args.command == "sweep":
            from int4rt.sweep import run as run_sweep

            return run_sweep(args)
    except Int4rtError as error:
        print(f"int4rt: error: {error}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
