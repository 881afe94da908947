"""``int4rt golden make | check | export`` (docs/VERIFICATION.md §4–§7).

``int4rt.cli`` calls :func:`add_parser` with its subcommands and :func:`run` with the parsed
arguments. ``run`` returns the exit status: 0 on success, 1 when golden data fails
verification (the message on stderr names set, tensor, index, expected and got); other
errors raise :class:`Int4rtError`, which the main CLI reports with status 2. Importing this
module is cheap; the golden machinery (NumPy, Numba) is imported when an action runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from int4rt.errors import Int4rtError

DEFAULT_DIR = "tests/golden"  # relative to the working directory: a checkout's root
BACKENDS = {"numpy": ("numpy",), "numba": ("numba",), "both": ("numpy", "numba")}


def add_parser(subcommands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``golden`` and its actions to the main parser's ``subcommands``."""
    golden = subcommands.add_parser(
        "golden", help="make, check or export the golden vectors (docs/VERIFICATION.md)")
    actions = golden.add_subparsers(dest="golden_command", metavar="ACTION", required=True)
    make = actions.add_parser("make", help="regenerate every golden set (NumPy reference)")
    make.add_argument("--out", default=DEFAULT_DIR, help=f"directory (default {DEFAULT_DIR})")
    make.add_argument("--force", action="store_true",
                      help="replace golden sets already in the directory")
    check = actions.add_parser(
        "check", help="verify checksums and recompute every golden tensor bit for bit")
    check.add_argument("--dir", help=f"golden data: the tests/golden folder of an int4rt "
                                     f"checkout (default ./{DEFAULT_DIR})")
    check.add_argument("--backend", choices=tuple(BACKENDS), default="both",
                       help="implementation(s) to check (default both)")
    check.add_argument("--set", dest="sets", action="append", metavar="SET",
                       help="check only this set (repeatable)")
    export = actions.add_parser(
        "export", help="write one set as $readmemh hex files plus a JSON manifest")
    export.add_argument("set", metavar="SET", help="golden set name (see index.json)")
    export.add_argument("--out", required=True, help="new or empty directory to write")
    export.add_argument("--dir", help=f"golden data (default ./{DEFAULT_DIR})")
    return golden


def run(args: argparse.Namespace) -> int:
    """Run the ``golden`` action in ``args``; returns the exit status."""
    from int4rt.golden.check import check_golden
    from int4rt.golden.export import export_set
    from int4rt.golden.make import make_golden
    from int4rt.golden.store import GoldenError

    if args.golden_command == "make":
        command = f"int4rt golden make --out {args.out}" + (" --force" if args.force else "")
        names = make_golden(Path(args.out), args.force, command)
        print(f"made {len(names)} golden sets in {args.out}")
        return 0
    if args.golden_command == "export":
        manifest = export_set(golden_dir(args.dir), args.set, Path(args.out))
        print(f"exported {args.set} to {args.out} (manifest {manifest})")
        return 0
    try:
        results = check_golden(golden_dir(args.dir), BACKENDS[args.backend], args.sets)
    except GoldenError as failure:
        print(f"int4rt golden check: FAILED: {failure}", file=sys.stderr)
        return 1
    values = sum(result.values for result in results)
    print(f"golden check passed: {len({r.name for r in results})} sets, {values} values, "
          f"backend {args.backend}, tolerance zero")
    return 0


def golden_dir(given: str | None) -> Path:
    """``--dir`` as given, else ``./tests/golden`` when the working directory is a checkout.

    An installed int4rt carries no golden data: outside a checkout, ``--dir`` is required.
    """
    if given is not None:
        return Path(given)
    default = Path(DEFAULT_DIR)
    if not default.is_dir():
        raise Int4rtError(f"no golden data at ./{DEFAULT_DIR}: run from an int4rt checkout or "
                          "pass --dir DIR (the tests/golden folder of a checkout)")
    return default
