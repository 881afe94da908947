"""``python -m benchmarks``: int4rt against its peers on one machine, in one process.

Encoder (int4rt vs ONNX Runtime int8/fp32, torch int8/fp32; 1 and 2 threads), full decodes
(greedy, modified beam 4/8/16, ALSD 8 × no LM / shallow / density ratio, plus the every-frame
worst case; on a random model and on the trained default model with its clips), cold start
and peak RSS. All runs of one table alternate, round by round; the figures are medians after
a warm-up. ``--quick`` is a smoke run on the tiny configs.

    python -m benchmarks --results docs/RESULTS.md --png docs/benchmarks.png
    python -m benchmarks --quick --no-peers
    python -m benchmarks --tables sherpa --results docs/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import sys

SEARCHES = ("greedy", "beam 4", "beam 8", "beam 16", "ALSD 8")
"""The decode grid's searches (``benchmarks.decode_grid.SEARCHES``; named here so that
parsing the command line imports neither NumPy nor Numba before the thread pools are sized)."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny configs, 1 s of audio, 1 round, 1 thread")
    parser.add_argument("--config", help="RNN-T config in configs/ (default paper.json)")
    parser.add_argument("--lm-config", help="LM config in configs/ (default lm-paper.json)")
    parser.add_argument("--seconds", type=float, help="audio length (default 10)")
    parser.add_argument("--label-rate", type=float, default=15.0,
                        help="labels per second the tuned model emits (default 15)")
    parser.add_argument("--threads", default=None, help="thread counts (default 1,2)")
    parser.add_argument("--repeats", type=int, help="rounds per table (default 5)")
    parser.add_argument("--searches", default=None,
                        help="comma-separated searches of the one-thread decode grid "
                             "(default: greedy,beam 4,beam 8,beam 16,ALSD 8; quick: greedy,beam 8)")
    parser.add_argument("--tables", default="encoder,decode,trained,process",
                        help="tables to run, of encoder,decode,trained,process,sherpa (default: "
                             "all but sherpa, whose batch-1 LM calls make it slow)")
    parser.add_argument("--no-peers", action="store_true", help="skip torch / ONNX Runtime")
    parser.add_argument("--compare-paths", default="",
                        help="comma-separated int4rt kernel paths (of int4rt.ops.gemv.dispatch."
                             "supported_paths()) to time as extra rows: the encoder, and beam 8 "
                             "with density ratio at one thread, alternating with the default")
    parser.add_argument("--json", help="write all timings to this JSON file")
    parser.add_argument("--results", help="write the tables into this Markdown file's section")
    parser.add_argument("--png", help="write the time-vs-beam plot here (needs matplotlib)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.config = args.config or ("tiny.json" if quick else "paper.json")
    args.lm_config = args.lm_config or ("lm-tiny.json" if quick else "lm-paper.json")
    args.seconds = args.seconds or (1.0 if quick else 10.0)
    args.repeats = args.repeats or (1 if quick else 5)
    args.threads = [int(t) for t in (args.threads or ("1" if quick else "1,2")).split(",")]
    args.tables = [t.strip() for t in args.tables.split(",")]
    args.compare_paths = [p.strip() for p in args.compare_paths.split(",") if p.strip()]
    if not set(args.tables) <= {"encoder", "decode", "trained", "process", "sherpa"}:
        parser.error("--tables: choose from encoder, decode, trained, process, sherpa")
    default_searches = "greedy,beam 8" if quick else ",".join(SEARCHES)
    args.searches = [s.strip() for s in (args.searches or default_searches).split(",")]
    if not set(args.searches) <= set(SEARCHES):
        parser.error(f"--searches: choose from {', '.join(SEARCHES)}")
    if min(args.threads) < 1 or args.repeats < 1 or args.seconds <= 0:
        parser.error("--threads, --repeats and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every table, print the Markdown, write the requested files; 0 on success."""
    args = _parse(argv)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    os.environ["NUMBA_NUM_THREADS"] = str(max(args.threads))
    from benchmarks.run import run_all_tables

    results = run_all_tables(args)
    from benchmarks.report import markdown, plot, write_section

    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    section = markdown(results, command.strip())
    print(section)
    if args.json:
        import json

        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=str)
    if args.results:
        from pathlib import Path

        write_section(Path(args.results), results["section"], section)
    if args.png and results["decode"]:
        from pathlib import Path

        plot(results, Path(args.png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
