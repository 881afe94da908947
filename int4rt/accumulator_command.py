"""``int4rt inspect MODEL --accumulators``: the command-line side of the accumulator analysis
(docs/VERIFICATION.md §5; the analysis itself is ``int4rt.golden.accumulator_widths``).

``int4rt.cli`` adds the options with :func:`add_inspect_options` and calls :func:`run` when
``--accumulators`` is given. Importing this module is cheap: the analysis (NumPy, the model
code) is imported only when it runs.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from int4rt.errors import Int4rtError

OVERFLOW_MODES = ("wrap", "saturate")
ACC_BITS_MIN, ACC_BITS_MAX = 2, 32


def add_inspect_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--accumulators`` and its options to the ``inspect`` parser."""
    group = parser.add_argument_group("accumulator analysis (docs/VERIFICATION.md §5)")
    group.add_argument("--accumulators", action="store_true",
                       help="report per-layer accumulator bounds and observed ranges")
    group.add_argument("--acc-bits", type=int, metavar="N",
                       help=f"emulate N-bit accumulators ({ACC_BITS_MIN}..{ACC_BITS_MAX})")
    group.add_argument("--overflow", choices=OVERFLOW_MODES, default="wrap",
                       help="what an N-bit accumulator does on overflow (default wrap)")
    group.add_argument("--input", metavar="FEATURES",
                       help="float features [T, F] (.npy); default: random features")
    group.add_argument("--frames", type=int, default=16, help="random feature frames (default 16)")
    group.add_argument("--seed", type=int, default=0, help="seed of random features and labels")
    group.add_argument("--static-only", action="store_true",
                       help="only the static bounds (no forward pass)")


def run(args: argparse.Namespace) -> int:
    """Print the accumulator report of ``args.model`` (JSON with ``args.json``)."""
    from int4rt.golden import accumulator_widths as analysis
    from int4rt.model.container import load_model
    from int4rt.model.lm import LmModel

    if args.acc_bits is not None and not ACC_BITS_MIN <= args.acc_bits <= ACC_BITS_MAX:
        raise Int4rtError(f"--acc-bits must be in [{ACC_BITS_MIN}, {ACC_BITS_MAX}], "
                          f"got {args.acc_bits}")
    if args.static_only and (args.acc_bits is not None or args.input is not None):
        raise Int4rtError("--static-only runs no model: drop --acc-bits and --input")
    model = load_model(args.model)
    report = analysis.static_report(model)
    if not args.static_only:
        if isinstance(model, LmModel):
            raise Int4rtError("observed accumulators need an RNN-T model; use --static-only")
        if args.input is not None:
            features, source = analysis.read_features(args.input, model), args.input
        else:
            features = analysis.random_features(model, args.frames, args.seed)
            source = f"random features (seed {args.seed})"
        analysis.observe(model, report, features, source, args.seed, args.acc_bits,
                         args.overflow)
    if getattr(args, "json", False):
        print(json.dumps(asdict(report), indent=2))
    else:
        print(analysis.format_report(report))
    return 0
