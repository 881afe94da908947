"""``int4rt sweep``: WER over a grid of LM weight × source-LM weight × beam on a dev manifest.

DECODING.md, "`int4rt sweep`": each utterance's encoder output is computed once and searched
at every grid point; shards of the manifest run on ``--jobs`` processes or ``--dask``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from int4rt.errors import Int4rtError
from int4rt.manifests import Item, read_manifest
from int4rt.options import BACKENDS, MANIFEST_FORMATS, Method

SEARCHES: tuple[Method, ...] = ("beam", "alsd")  # the searches with a beam to sweep


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Register ``sweep`` and its options."""
    p = subcommands.add_parser(
        "sweep", help="WER over a grid of LM weights and beams on a dev manifest",
        description="Decode a dev manifest at every point of lm-weight x source-lm-weight x "
                    "beam, each encoder output computed once; print the WER table and the best.")
    p.add_argument("model", metavar="MODEL", help="RNN-T model file (.safetensors)")
    p.add_argument("--manifest", metavar="M", required=True,
                   help="manifest with reference texts (any format of transcribe)")
    p.add_argument("--manifest-format", choices=MANIFEST_FORMATS, default="auto",
                   help="manifest format (default: detected)")
    p.add_argument("--method", choices=SEARCHES, default="beam", help="search (default beam)")
    p.add_argument("--beams", type=_ints, default=(4,), metavar="W,W,...",
                   help="beam widths (default 4)")
    p.add_argument("--lm", metavar="LM", help="external LM file")
    p.add_argument("--lm-weights", type=_floats, default=(0.0,), metavar="λ,λ,...",
                   help="external LM weights (default 0)")
    p.add_argument("--source-lm", metavar="LM", help="source-domain LM file (density ratio)")
    p.add_argument("--source-lm-weights", type=_floats, default=(0.0,), metavar="λ,λ,...",
                   help="source LM weights (default 0)")
    p.add_argument("--length-reward", type=float, default=0.0, help="reward per label (nats)")
    p.add_argument("--blank-penalty", type=float, default=0.0, help="penalty per blank (nats)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="a Dask scheduler address or local:N (DECODING.md, Dask)")
    p.add_argument("--shard-size", type=int, default=8, help="utterances per task (default 8)")
    p.add_argument("--backend", choices=BACKENDS, default="numba",
                   help="numba kernels (default) or the NumPy reference")
    p.add_argument("--output", metavar="SWEEP.json", help="also write the table as JSON here")


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}"
                                         ) from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")
    return values


def grid(args: argparse.Namespace) -> list[tuple[float, float, int]]:
    """The grid points (lm weight, source LM weight, beam), lm weight varying slowest."""
    return list(itertools.product(args.lm_weights, args.source_lm_weights, args.beams))


def sweep_shard(model_path: str, settings: dict, items: list[Item]) -> list[dict]:
    """Per utterance ``{"key", "texts": [best text per grid point]}`` or ``{"key", "error"}``.

    The encoder and its projection run once per utterance; the search once per grid point
    (``int4rt.decode.search``). DECODING.md, "`int4rt sweep`".
    """
    from int4rt.decode import search
    from int4rt.frontend import compute_features
    from int4rt.transcribe import cached_recognizer, item_samples

    recognizer = cached_recognizer(model_path)
    model, backend = recognizer.model, settings["backend"]
    prepared = [recognizer.prepare(**_options(settings, point)) for point in settings["grid"]]
    out = []
    for item in items:
        try:
            features = compute_features(item_samples(recognizer, item), model.frontend)
            enc, _ = model.encode(features, backend=backend)
            enc_proj = model.project_encoder(enc, backend=backend)
        except Int4rtError as error:
            out.append({"key": item.key, "error": str(error)})
            continue
        texts = [search(model, enc_proj, options, lm=lm, source_lm=source, backend=backend).text
                 for options, lm, source in prepared]
        out.append({"key": item.key, "texts": texts})
    return out


def _options(settings: dict, point: list) -> dict:
    lm_weight, source_lm_weight, beam = point
    return dict(method=settings["method"], beam=beam, lm=settings["lm"], lm_weight=lm_weight,
                source_lm=settings["source_lm"], source_lm_weight=source_lm_weight,
                length_reward=settings["length_reward"],
                blank_penalty=settings["blank_penalty"])


def run(args: argparse.Namespace) -> int:
    """``int4rt sweep``: the table on stdout, the best point last; 0 on success."""
    from tqdm import tqdm

    from int4rt.executors import map_shards, split
    from int4rt.metrics import cer, wer
    from int4rt.transcribe import load_recognizer

    if args.dask and args.jobs != 1:
        raise Int4rtError("sweep: give --jobs N or --dask ADDRESS, not both")
    items = [item for item in read_manifest(args.manifest, args.manifest_format)
             if item.reference is not None]
    if not items:
        raise Int4rtError(f"sweep: {args.manifest} has no reference texts; a sweep needs them")
    points = grid(args)
    settings = dict(method=args.method, grid=[list(point) for point in points], lm=args.lm,
                    source_lm=args.source_lm, length_reward=args.length_reward,
                    blank_penalty=args.blank_penalty, backend=args.backend)
    recognizer = load_recognizer(args.model)  # a bad model, LM or grid point fails here
    for point in points:
        recognizer.prepare(**_options(settings, list(point)))
    shards = split(items, args.shard_size)
    bar = tqdm(total=len(shards), file=sys.stderr, unit="shard", disable=len(shards) <= 1)

    def shard_done(finished: int, total: int) -> None:
        bar.update(finished - bar.n)

    task = functools.partial(sweep_shard, args.model, settings)
    results = {entry["key"]: entry for _, shard in map_shards(
        task, shards, jobs=args.jobs, dask=args.dask, done=shard_done) for entry in shard}
    bar.close()
    decoded = [item for item in items if "texts" in results[item.key]]
    refs = [item.reference or "" for item in decoded]
    table = []
    for index, (lm_weight, source_lm_weight, beam) in enumerate(points):
        hyps = [results[item.key]["texts"][index] for item in decoded]
        table.append({"lm_weight": lm_weight, "source_lm_weight": source_lm_weight,
                      "beam": beam, "wer": _rate(wer, refs, hyps), "cer": _rate(cer, refs, hyps)})
    best = min(table, key=lambda row: (row["wer"] is None, row["wer"] or 0.0))
    _print_table(table, best, len(decoded), len(items) - len(decoded))
    if args.output:
        report = {"utterances": len(decoded), "failed": len(items) - len(decoded),
                  "points": table, "best": best}
        try:
            Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            raise Int4rtError(f"cannot write --output {args.output}: {error}") from None
    return 0


def _print_table(table: list[dict], best: dict, decoded: int, failed: int) -> None:
    print(f"{'lm_weight':>9} {'source_lm_weight':>16} {'beam':>4} {'WER':>8} {'CER':>8}")
    for row in table:
        print(f"{row['lm_weight']:>9g} {row['source_lm_weight']:>16g} {row['beam']:>4d} "
              f"{_percent(row['wer']):>8} {_percent(row['cer']):>8}")
    note = f" ({failed} utterances failed and are not counted)" if failed else ""
    print(f"best: lm_weight {best['lm_weight']:g}, source_lm_weight "
          f"{best['source_lm_weight']:g}, beam {best['beam']}: WER {_percent(best['wer'])} "
          f"over {decoded} utterances{note}")


def _rate(metric: Callable[[list[str], list[str]], float], refs: list[str],
          hyps: list[str]) -> float | None:
    """The error rate, None when nothing was scored."""
    value = metric(refs, hyps) if refs else math.nan
    return None if math.isnan(value) else value


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.2f}%"
