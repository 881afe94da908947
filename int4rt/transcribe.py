"""``int4rt transcribe``: files or a manifest to JSON lines, resumable, in worker processes.

DECODING.md, "`int4rt transcribe`" and "Limits", describe the command; each output line is
written whole or not at all. The per-input work and the process pool are in
``int4rt.corpus``, the ``--output`` file in ``int4rt.output_file``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import stat
import sys
from pathlib import Path

from int4rt import __version__
from int4rt.corpus import Item, init_worker, json_line, local_results, usable_cores
from int4rt.errors import Int4rtError
from int4rt.model.backend import BACKENDS
from int4rt.output_file import OutputFile, file_sha256

METHODS = ("greedy", "beam", "alsd")
MANIFEST_BYTES_MAX = 1 << 30  # largest manifest read (DECODING.md, Limits)
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (e.g. `| head`)


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Register ``transcribe`` and its options."""
    p = subcommands.add_parser(
        "transcribe", help="decode audio files to JSON lines (beam search, LM fusion)",
        description="Decode audio with an int4rt RNN-T model. One JSON line per input.")
    p.add_argument("model", metavar="MODEL", help="RNN-T model file (.safetensors)")
    p.add_argument("audio", metavar="AUDIO", nargs="*", help="audio files (wav, flac, ogg)")
    p.add_argument("--manifest", metavar="M.jsonl",
                   help='JSON lines {"audio": path, "text": optional reference}')
    p.add_argument("--method", choices=METHODS, default="greedy", help="search (default greedy)")
    p.add_argument("--beam", type=int, default=4, help="beam width (default 4)")
    p.add_argument("--max-symbols-per-frame", type=int, default=3,
                   help="greedy: labels per frame at most (default 3)")
    p.add_argument("--lm", metavar="LM", help="external LM file (shallow or density-ratio fusion)")
    p.add_argument("--lm-weight", type=float, default=0.0, help="external LM weight")
    p.add_argument("--source-lm", metavar="LM", help="source-domain LM file (density ratio)")
    p.add_argument("--source-lm-weight", type=float, default=0.0, help="source LM weight")
    p.add_argument("--length-reward", type=float, default=0.0, help="reward per label (nats)")
    p.add_argument("--blank-penalty", type=float, default=0.0, help="penalty per blank (nats)")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses to report (default 1)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes (default 1; at most the usable cores)")
    p.add_argument("--force-jobs", action="store_true",
                   help="allow --jobs above the number of usable cores")
    p.add_argument("--backend", choices=BACKENDS, default="numba",
                   help="numba kernels (default) or the NumPy reference")
    p.add_argument("--output", metavar="OUT.jsonl",
                   help="append results here; inputs already in it are skipped (resume)")


def _items(args: argparse.Namespace) -> list[Item]:
    if bool(args.audio) == bool(args.manifest):
        raise Int4rtError("transcribe: give audio files or --manifest M.jsonl (one of the two)")
    if args.audio:
        return [Item(a, a) for a in args.audio]
    manifest = Path(args.manifest)
    try:
        info = os.stat(manifest)
        if not stat.S_ISREG(info.st_mode):
            raise Int4rtError(f"manifest {manifest} is not a regular file (a folder, FIFO or "
                              "device); give a JSON-lines file")
        if info.st_size > MANIFEST_BYTES_MAX:
            raise Int4rtError(f"manifest {manifest} is {info.st_size} bytes, more than the limit "
                              f"of {MANIFEST_BYTES_MAX}; split it")
        lines = manifest.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise Int4rtError(f"cannot read manifest {manifest}: {error}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise Int4rtError(f"{manifest}:{number}: not JSON ({error.msg})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("audio"), str):
            raise Int4rtError(f'{manifest}:{number}: needs an "audio" string')
        reference = entry.get("text")
        if reference is not None and not isinstance(reference, str):
            raise Int4rtError(f'{manifest}:{number}: "text" must be a string')
        path = Path(entry["audio"])
        resolved = path if path.is_absolute() else manifest.parent / path
        items.append(Item(entry["audio"], str(resolved), reference))
    return items


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

    _check_jobs(args.jobs, args.force_jobs)
    items = _items(args)
    settings = dict(
        method=args.method, beam=args.beam, max_symbols_per_frame=args.max_symbols_per_frame,
        lm=args.lm, lm_weight=args.lm_weight, source_lm=args.source_lm,
        source_lm_weight=args.source_lm_weight, length_reward=args.length_reward,
        blank_penalty=args.blank_penalty, nbest=args.nbest, backend=args.backend)
    init_worker(args.model, settings)  # a bad model, LM or option fails before any input
    from int4rt.corpus import worker_recognizer

    worker_recognizer().prepare(**{k: v for k, v in settings.items() if k != "backend"})
    output = None
    if args.output:
        output = OutputFile(Path(args.output), _record(args, settings), _input_files(args, items))
    done = output.done if output else {}
    todo = [item for item in items if item.audio not in done]
    lines = dict(done)
    bar = tqdm(total=len(todo), disable=len(items) <= 1, file=sys.stderr, unit="file")
    try:
        jobs = min(args.jobs, max(len(todo), 1))
        for line in local_results(todo, jobs, args.model, settings):
            data = json_line(line)
            if output is None:
                _print_line(data)
            else:
                output.write(data)
            lines[line["audio"]] = line
            bar.update()
    finally:
        bar.close()
        if output is not None:
            output.close()
    _report_error_rates(items, lines)
    return 0


def _check_jobs(jobs: int, forced: bool) -> None:
    if jobs < 1:
        raise Int4rtError(f"transcribe: --jobs must be >= 1, got {jobs}")
    cores = usable_cores()
    if jobs > cores and not forced:
        raise Int4rtError(f"transcribe: --jobs {jobs} is more than the {cores} usable cores "
                          "(each worker holds a copy of the model); lower it or add "
                          "--force-jobs")


def _record(args: argparse.Namespace, settings: dict) -> dict:
    """What produced an output file (DECODING.md, Resuming): compared on every resume."""
    def digest(path: str | None) -> str | None:
        return None if path is None else file_sha256(path)

    return {
        "format": "int4rt-transcribe", "version": 1, "int4rt_version": __version__,
        "model_sha256": digest(args.model), "lm_sha256": digest(args.lm),
        "source_lm_sha256": digest(args.source_lm),
        "options": {k: v for k, v in settings.items() if k not in ("lm", "source_lm", "backend")},
        "manifest": None if args.manifest is None else os.path.abspath(args.manifest),
    }


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

    pairs = [(item.reference, lines[item.audio].get("text"))
             for item in items if item.reference is not None and item.audio in lines]
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
