"""The ``int4rt`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from int4rt import __version__
from int4rt.errors import Int4rtError


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
        "convert", help="write a model file (docs/FORMAT.md); for now a random model of a config",
    )
    convert.add_argument("--random", type=int, metavar="SEED",
                         help="random weights from this seed (checkpoints: a later release)")
    convert.add_argument("--config", metavar="CONFIG", help="model configuration (configs/*.json)")
    convert.add_argument("-o", "--output", metavar="MODEL", help="model file to write")
    inspect = subcommands.add_parser(
        "inspect", help="show a model file's layers, quantization formats and compression ratio",
    )
    inspect.add_argument("model", metavar="MODEL", help="model file (.safetensors)")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _convert(args: argparse.Namespace) -> int:
    """``int4rt convert --random SEED --config CONFIG -o MODEL``."""
    if args.random is None:
        raise Int4rtError("convert: converting a trained checkpoint is not implemented yet; "
                          "use --random SEED --config CONFIG -o MODEL for a random model")
    if args.random < 0:
        raise Int4rtError(f"convert: --random SEED must be >= 0, got {args.random}")
    if args.config is None or args.output is None:
        raise Int4rtError("convert: --random needs --config CONFIG and -o MODEL")
    from int4rt.model.config import load_config
    from int4rt.model.container import save_model
    from int4rt.model.random_model import random_model

    config = load_config(args.config)
    save_model(random_model(config, args.random), args.output)
    print(f"wrote {args.output}: random {config.architecture} model of {args.config}, "
          f"seed {args.random}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    """``int4rt inspect MODEL [--json]``."""
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
    except Int4rtError as error:
        print(f"int4rt: error: {error}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
