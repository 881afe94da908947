"""The runner's measurements (``python -m benchmarks``); the thread pools are sized first."""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numba
import numpy as np
import soundfile

from benchmarks import decode_grid, encoder_peers, process_stats, workload
from benchmarks.timing import alternate
from benchmarks.workload import build, features_for, tune_label_rate
from int4rt.decode import DecodeOptions, decode
from int4rt.model.container import load_model, save_model
from int4rt.ops.gemv.dispatch import layouts_on_path


def _log(message: str) -> None:
    print(f"[{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}] {message}", flush=True)


def on_path(models: tuple, path: str, folder: Path, warm_up: Callable[..., object]) -> tuple:
    """Fresh copies of ``models`` (saved and loaded again, so no layout is shared) whose
    layouts take kernel path ``path``: ``warm_up(*copies)`` runs inside
    :func:`~int4rt.ops.gemv.dispatch.layouts_on_path`, which builds them; the copies keep the
    path afterwards. Lets one table compare paths in one process, alternating.
    """
    copies = []
    for index, model in enumerate(models):
        file = folder / f"path-{path}-{index}.safetensors"
        save_model(model, file)
        copies.append(load_model(file))
    with layouts_on_path(path):
        warm_up(*copies)
    return tuple(copies)


def encoder_tables(model, features, frames, args, folder: Path) -> dict[int, dict]:
    """Per thread count: int4rt's encoder (on each path of ``--compare-paths`` too) and the
    peers', alternating."""
    onnx_files = None if args.no_peers else encoder_peers.export_onnx(model, frames, folder)
    others = {path: on_path((model,), path, folder, lambda m: m.encode(features))[0]
              for path in args.compare_paths}
    tables = {}
    for threads in args.threads:
        def int4rt_encode(threads=threads, model=model):
            numba.set_num_threads(threads)
            return model.encode(features)

        runs = {"int4rt (Numba)": int4rt_encode}
        runs |= {f"int4rt (Numba), `{path}` path": partial(int4rt_encode, model=other)
                 for path, other in others.items()}
        if not args.no_peers:
            runs |= encoder_peers.ort_runs(onnx_files, model, frames, threads)
            runs |= encoder_peers.torch_runs(model, frames, threads)
        _log(f"encoder, {threads} thread(s): {', '.join(runs)}")
        tables[threads] = alternate(runs, args.repeats)
    return tables


def decode_tables(tuned, untuned, features, ext, src, args, folder: Path) -> dict[int, dict]:
    """One thread: the whole grid plus the every-frame case, and the headline on each path of
    ``--compare-paths``; more threads: the headline."""
    headline = DecodeOptions(**decode_grid.SEARCHES[decode_grid.HEADLINE[0]],
                             **decode_grid.FUSIONS[decode_grid.HEADLINE[1]])
    others = {path: on_path((tuned, ext, src), path, folder,
                            lambda m, e, s: decode(m, features, headline, lm=e, source_lm=s))
              for path in args.compare_paths}
    tables = {}
    for threads in args.threads:
        searches = {name: decode_grid.SEARCHES[name] for name in args.searches}
        searches = searches if threads == 1 else {
            "greedy": decode_grid.SEARCHES["greedy"],
            decode_grid.HEADLINE[0]: decode_grid.SEARCHES[decode_grid.HEADLINE[0]]}
        grid = decode_grid.runs(tuned, features, ext, src, searches)
        runs = {f"{search} / {fusion}": fn for (search, fusion), fn in grid.items()}
        if threads == 1:
            options = DecodeOptions(method="beam", beam=8,
                                    **decode_grid.FUSIONS["density ratio"])
            runs["beam 8 / density ratio, every frame"] = partial(
                decode, untuned, features, options, lm=ext, source_lm=src)
            for path, (m, e, s) in others.items():
                runs[f"beam 8 / density ratio, `{path}` path"] = partial(
                    decode, m, features, headline, lm=e, source_lm=s)

        def pinned(fn, threads=threads):
            def run():
                numba.set_num_threads(threads)
                return fn()
            return run

        _log(f"decode grid, {threads} thread(s): {len(runs)} runs × {args.repeats} rounds")
        tables[threads] = alternate({k: pinned(v) for k, v in runs.items()}, args.repeats)
    return tables


def process_tables(tuned, ext, src, args, folder: Path) -> dict:
    """Cold start and peak RSS of fresh ``int4rt transcribe`` processes."""
    paths = [folder / name for name in ("rnnt.safetensors", "ext.safetensors",
                                        "src.safetensors")]
    for model, path in zip((tuned, ext, src), paths, strict=True):
        save_model(model, path)
    audio = folder / "noise.wav"
    rate = tuned.frontend.sample_rate
    noise = np.random.default_rng(0).standard_normal(int(args.seconds * rate)) * 0.1
    soundfile.write(audio, noise.astype(np.float32), rate, subtype="PCM_16")
    _log("cold start and peak RSS (fresh processes)")
    return {"cold": process_stats.cold_start(paths[0], audio, args.repeats),
            "fused": process_stats.fused_peak_rss(*paths, audio)}


def sherpa_table(tuned, ext, src, features, args, folder: Path) -> dict:
    """int4rt vs sherpa-onnx, one thread, alternating: greedy, beam 8, beam 8 with LM fusion.

    sherpa-onnx decodes 16 kHz noise (its own fbank); int4rt the benchmark features of the
    same duration. Both models are tuned to the same greedy label rate.
    """
    from benchmarks import sherpa_peer

    samples = np.random.default_rng(0).standard_normal(int(args.seconds * 16000)) * 0.1
    samples = samples.astype(np.float32)
    _log("sherpa-onnx: export and label-rate tuning")
    paths, rate = sherpa_peer.tuned_paths(folder, list(tuned.vocab), samples, args.seconds,
                                          args.label_rate)
    _log(f"sherpa-onnx label rate {rate:.1f} labels/s")
    numba.set_num_threads(1)
    grid = decode_grid.runs(tuned, features, ext, src,
                            {"greedy": decode_grid.SEARCHES["greedy"],
                             "beam 8": decode_grid.SEARCHES["beam 8"]})
    runs = {"int4rt greedy": grid["greedy", "no LM"],
            "int4rt beam 8": grid["beam 8", "no LM"],
            "int4rt beam 8 + shallow fusion": grid["beam 8", "shallow"],
            "int4rt beam 8 + density ratio": grid["beam 8", "density ratio"]}
    runs |= sherpa_peer.runs(paths, samples, 1)
    _log(f"sherpa-onnx vs int4rt: {len(runs)} runs × {args.repeats} rounds")
    return {"label_rate": rate, "times": alternate(runs, args.repeats)}


def trained_table(args: argparse.Namespace) -> dict:
    """One thread: the decode grid on the shipped default model and its LMs, each run decoding
    every shipped clip; the label rate is greedy search's on those clips.
    """
    model, ext, src, clips, seconds = workload.trained()
    numba.set_num_threads(1)
    searches = {name: decode_grid.SEARCHES[name] for name in args.searches}
    grid = decode_grid.runs_over_clips(model, clips, ext, src, searches)
    missing = {"shallow"} if ext is None else set()
    missing |= {"density ratio"} if ext is None or src is None else set()
    runs = {f"{search} / {fusion}": fn for (search, fusion), fn in grid.items()
            if fusion not in missing}
    greedy = DecodeOptions(**decode_grid.SEARCHES["greedy"])
    labels = sum(len(decode(model, features, greedy).tokens) for features in clips)
    _log(f"trained default model: {len(clips)} clips, {seconds:.1f} s, "
         f"{labels / seconds:.1f} labels/s; {len(runs)} runs × {args.repeats} rounds")
    return {"clips": len(clips), "seconds": seconds, "label_rate": labels / seconds,
            "times": alternate(runs, args.repeats)}


def run_all_tables(args: argparse.Namespace) -> dict:
    """Every measurement of the runner, as one dictionary."""
    _log(f"building {args.config} and two {args.lm_config} (random weights)")
    model, ext, src = build(args.config, args.lm_config)
    features = features_for(model, args.seconds)
    numba.set_num_threads(1)
    tuned, rate = tune_label_rate(model, features, args.seconds, args.label_rate)
    _log(f"label rate tuned to {rate:.1f} labels/s")
    frames = model.encode(features)[0].shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        section = "sherpa" if args.tables == ["sherpa"] else "main"
        results = {"section": section, "date": f"{datetime.date.today()}",
                   "config": args.config, "lm_config": args.lm_config,
                   "seconds": args.seconds, "frames": frames, "repeats": args.repeats,
                   "label_rate": rate, "encoder": None, "decode": None, "process": None,
                   "sherpa": None, "trained": None}
        tables = {
            "encoder": lambda: encoder_tables(model, features, frames, args, folder),
            "decode": lambda: decode_tables(tuned, model, features, ext, src, args, folder),
            "process": lambda: process_tables(tuned, ext, src, args, folder),
            "sherpa": lambda: (None if args.no_peers else
                               sherpa_table(tuned, ext, src, features, args, folder)),
            "trained": lambda: trained_table(args),
        }
        for name in args.tables:
            results[name] = tables[name]()
            if args.json:  # after every table, so a long run killed later keeps what it has
                Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results
