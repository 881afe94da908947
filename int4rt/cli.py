"""The ``int4rt`` command line."""

from __future__ import annotations

import argparse
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
    return parser


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
    except Int4rtError as error:
        print(f"int4rt: error: {error}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
