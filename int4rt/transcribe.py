"""``int4rt transcribe``: files or a manifest to JSON lines, resumable, in worker processes.

DECODING.md, "`int4rt transcribe`", "Limits" and "Dask", describe the command; each output
line is written whole or not at all. Manifests are read by ``int4rt.manifests``; the inputs
go in shards through ``int4rt.executors`` (this process, ``--jobs`` processes or ``--dask``)
to ``int4rt.corpus.decode_shard``, which isolates each input; the ``--output`` file is
``int4rt.output_file``'s; the summary comes from ``int4rt.run_summary``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from int4rt import __version__
from int4rt.corpus import decode_shard, init_worker, json_line, usable_cores, worker_recognizer
from int4rt.errors import Int4rtError
from int4rt.manifests import Item, detect_format, kaldi_directory, read_manifest
from int4rt.options import BACKENDS, MANIFEST_FORMATS, METHODS
from int4rt.output_file import OutputFile, file_sha256
from int4rt.run_summary import report_summary

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (e.g. `| head`)
LOCAL_SHARD_SIZE = 1  # inputs per task in this process or --jobs workers: lines as they finish


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Register ``transcribe`` and its options."""
    p = subcommands.add_parser(
        "transcribe", help="decode audio files to JSON lines (beam search, LM fusion)",
        description="Decode audio with an int4rt RNN-T model. One JSON line per input.")
    p.add_argument("inputs", metavar="[MODEL] AUDIO", nargs="*",
                   help="an RNN-T model file (.safetensors; left out: the default model shipped "
                        "with int4rt, decoded with its recommended settings) and audio files "
                        "(wav, flac, ogg)")
    p.add_argument("--manifest", metavar="M",
                   help='JSON lines {"audio": path, "text": optional reference}, a NeMo or '
                        "lhotse manifest, or a Kaldi data directory (DECODING.md, Manifests)")
    p.add_argument("--manifest-format", choices=MANIFEST_FORMATS, default="auto",
                   help="manifest format (default: detected)")
    given = " (default %s; default model: its recommended setting)"
    p.add_argument("--method", choices=METHODS, help="search" + given % "greedy")
    p.add_argument("--beam", type=int, help="beam width" + given % "4")
    p.add_argument("--max-symbols-per-frame", type=int, default=3,
                   help="greedy: labels per frame at most (default 3)")
    p.add_argument("--lm", metavar="LM", help="external LM file (shallow or density-ratio fusion)")
    p.add_argument("--lm-weight", type=float, help="external LM weight" + given % "0")
    p.add_argument("--source-lm", metavar="LM", help="source-domain LM file (density ratio)")
    p.add_argument("--source-lm-weight", type=float, help="source LM weight" + given % "0")
    p.add_argument("--length-reward", type=float, help="reward per label, nats" + given % "0")
    p.add_argument("--blank-penalty", type=float, help="penalty per blank, nats" + given % "0")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses to report (default 1)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes (default 1; at most the usable cores)")
    p.add_argument("--force-jobs", action="store_true",
                   help="allow --jobs above the number of usable cores")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="decode on a Dask cluster: a scheduler address (tcp://host:8786) or "
                        "local:N for N local worker processes (DECODING.md, Dask)")
    p.add_argument("--shard-size", type=int, default=8,
                   help="--dask: inputs per task sent to a worker (default 8)")
    p.add_argument("--summary", metavar="S.json",
                   help="also write the end-of-run summary (items, errors, hours, RTF, WER) here")
    p.add_argument("--backend", choices=BACKENDS, default="numba",
                   help="numba kernels (default) or the NumPy reference")
    p.add_argument("--output", metavar="OUT.jsonl",
                   help="append results here; inputs already in it are skipped (resume)")


PLAIN_DEFAULTS = {"method": "greedy", "beam": 4, "lm_weight": 0.0, "source_lm_weight": 0.0,
                  "length_reward": 0.0, "blank_penalty": 0.0}  # with a model file named


def _resolve_model(args: argparse.Namespace) -> dict:
    """Set ``args.model`` and ``args.audio`` from ``args.inputs`` (the first input is the model
    when it names a ``.safetensors`` file, else the default model is used); return the search
    settings: the flags given, over the default model's recommended ones or the plain defaults.
    """
    inputs = list(args.inputs)
    given = {key: getattr(args, key) for key in (*PLAIN_DEFAULTS, "lm", "source_lm")
             if getattr(args, key) is not None}
    if inputs and inputs[0].lower().endswith(".safetensors"):
        args.model, args.audio = inputs[0], inputs[1:]
        return {**PLAIN_DEFAULTS, "lm": None, "source_lm": None, **given}
    from int4rt.bundle import load_bundle, merge_settings

    bundle = load_bundle()
    args.model, args.audio = str(bundle.model_path), inputs
    print(f"int4rt: default model: {bundle.describe()}", file=sys.stderr)
    return {**PLAIN_DEFAULTS, "lm": None, "source_lm": None,
            **merge_settings(bundle.decoding, given)}


def _items(args: argparse.Namespace) -> list[Item]:
    if bool(args.audio) == bool(args.manifest):
        raise Int4rtError("transcribe: give audio files or --manifest M.jsonl (one of the two)")
    if args.audio:
        return [Item(a, a) for a in args.audio]
    return read_manifest(args.manifest, args.manifest_format)


def run(args: argparse.Namespace) -> int:
    """``int4rt transcribe``; returns the exit status (0 even when some inputs failed).

    Ctrl-C ends the run with one line and status 130; a closed stdout pipe with status 141.
    """
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("int4rt: interrupted; rerun the same command with --output to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    started = time.perf_counter()
    _check_executor(args)
    search = _resolve_model(args)
    args.lm, args.source_lm = search["lm"], search["source_lm"]
    items = _items(args)
    settings = dict(
        method=search["method"], beam=search["beam"],
        max_symbols_per_frame=args.max_symbols_per_frame, lm=args.lm,
        lm_weight=search["lm_weight"], source_lm=args.source_lm,
        source_lm_weight=search["source_lm_weight"], length_reward=search["length_reward"],
        blank_penalty=search["blank_penalty"], nbest=args.nbest, backend=args.backend)
    init_worker(args.model, settings)  # a bad model, LM or option fails before any input
    worker_recognizer().prepare(**{k: v for k, v in settings.items() if k != "backend"})
    output = None
    if args.output:
        output = OutputFile(Path(args.output), _record(args, settings), _input_files(args, items))
    done = output.done if output else {}
    todo = [item for item in items if item.key not in done]
    lines = dict(done)
    bar = tqdm(total=len(todo), disable=len(items) <= 1, file=sys.stderr, unit="file")
    try:
        for line in _results(todo, args, settings, bar.set_postfix_str):
            data = json_line(line)
            if output is None:
                _print_line(data)
            else:
                output.write(data)
            lines[line.get("id", line["audio"])] = line
            bar.update()
    finally:
        bar.close()
        if output is not None:
            output.close()
    _report_error_rates(items, lines)
    report_summary(items, lines, {item.key for item in todo}, time.perf_counter() - started,
                   args.summary)
    return 0


def _check_executor(args: argparse.Namespace) -> None:
    """--jobs (at most the usable cores unless forced), --dask and --shard-size."""
    if args.jobs < 1:
        raise Int4rtError(f"transcribe: --jobs must be >= 1, got {args.jobs}")
    if args.dask and args.jobs != 1:
        raise Int4rtError("transcribe: give --jobs N or --dask ADDRESS, not both")
    if args.shard_size < 1:
        raise Int4rtError(f"transcribe: --shard-size must be >= 1, got {args.shard_size}")
    cores = usable_cores()
    if args.jobs > cores and not args.force_jobs:
        raise Int4rtError(f"transcribe: --jobs {args.jobs} is more than the {cores} usable "
                          "cores (each worker holds a copy of the model); lower it or add "
                          "--force-jobs")


def _results(todo: list[Item], args: argparse.Namespace, settings: dict,
             progress: Callable[[str], object]) -> Iterator[dict]:
    """Output lines in input order: shards of ``todo`` decoded by ``decode_shard`` in this
    process, in ``--jobs`` worker processes or on ``--dask`` (DECODING.md, "Dask").
    """
    from int4rt.executors import map_shards, split

    def shard_done(finished: int, total: int) -> None:
        if args.dask:
            progress(f"shards {finished}/{total}")

    size = args.shard_size if args.dask else LOCAL_SHARD_SIZE
    task = functools.partial(decode_shard, args.model, settings)
    for _, lines in map_shards(task, split(todo, size), jobs=args.jobs, dask=args.dask,
                               done=shard_done):
        yield from lines


def _record(args: argparse.Namespace, settings: dict) -> dict:
    """What produced an output file (DECODING.md, Resuming): compared on every resume.

    The executor (--jobs, --dask, --shard-size) is not part of it: every executor writes the
    same lines, so a run may be resumed on another.
    """
    def digest(path: str | None) -> str | None:
        return None if path is None else file_sha256(path)

    return {
        "format": "int4rt-transcribe", "version": 1, "int4rt_version": __version__,
        "model_sha256": digest(args.model), "lm_sha256": digest(args.lm),
        "source_lm_sha256": digest(args.source_lm),
        "options": {k: v for k, v in settings.items() if k not in ("lm", "source_lm", "backend")},
        **_manifest_record(args.manifest, args.manifest_format),
    }


def _manifest_record(manifest: str | None, manifest_format: str) -> dict:
    """The manifest and its format as read: a Kaldi data directory is named by its folder,
    whether given as the folder or its ``wav.scp``; ``auto`` is recorded as the format found.
    """
    if manifest is None:
        return {"manifest": None, "manifest_format": None}
    source = Path(manifest)
    kind = detect_format(source) if manifest_format == "auto" else manifest_format
    if kind == "kaldi":
        source = kaldi_directory(source)
    return {"manifest": os.path.abspath(source), "manifest_format": kind}


def _input_files(args: argparse.Namespace, items: list[Item]) -> list[str]:
    """Every file the run reads: the output may be none of them."""
    named = [args.model, args.lm, args.source_lm, args.manifest]
    return [name for name in named if name is not None] + [item.path for item in items]


def _print_line(data: bytes) -> None:
    """Write one output line to stdout (its bytes when it has a binary buffer) and flush."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8"))
    else:
        sys.stdout.flush()
        buffer.write(data)
        buffer.flush()
    sys.stdout.flush()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush raises no second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _report_error_rates(items: list[Item], lines: dict[str, dict]) -> None:
    from int4rt.metrics import cer, wer

    pairs = [(item.reference, lines[item.key].get("text"))
             for item in items if item.reference is not None and item.key in lines]
    scored = [(ref, hyp) for ref, hyp in pairs if hyp is not None]
    if not scored:
        return
    refs, hyps = zip(*scored, strict=True)
    word, char = wer(list(refs), list(hyps)), cer(list(refs), list(hyps))
    failed = len(pairs) - len(scored)
    note = f" ({failed} inputs failed and are not counted)" if failed else ""
    print(f"WER {_percent(word)}  CER {_percent(char)} over {len(scored)} references{note}",
          file=sys.stderr)


def _percent(rate: float) -> str:
    return "n/a" if math.isnan(rate) else f"{100 * rate:.2f}%"
