"""Copy a run's newest checkpoint into the repository as a milestone (docs/TRAINING.md §4).

    python -m int4rt_train.milestone --run /work/runs/small --out models/checkpoints/small-fp32
    python -m int4rt_train.milestone --merge models/checkpoints/small-fp32 -o small-fp32.safetensors

A milestone is a folder of ``part-NN.safetensors`` files (float32 model tensors under the
converter's names, each file below ``--max-mb`` so git stays light; no optimizer state) and
``milestone.json`` (step, epoch, audio seen, dev WER, source checkpoint). ``--merge`` writes
the parts as one checkpoint that ``int4rt convert`` reads; ``train --init-from FOLDER``
starts a new run from the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from int4rt_train.checkpoint import PATTERN, model_tensors, newest_checkpoint


def write_milestone(checkpoint: Path, out: Path, max_bytes: int) -> list[Path]:
    """Split the checkpoint's model tensors into parts of at most ``max_bytes``; return them."""
    tensors = model_tensors(checkpoint)
    with safe_open(str(checkpoint), framework="pt") as handle:
        state = json.loads(handle.metadata()["state"])
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(tensors):
        nbytes = tensors[name].numel() * tensors[name].element_size()
        if nbytes > max_bytes:
            raise SystemExit(f"tensor {name} has {nbytes} bytes, more than --max-mb allows")
        if groups[-1] and size + nbytes > max_bytes:
            groups.append({})
            size = 0
        groups[-1][name] = tensors[name].float().contiguous()
        size += nbytes
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("part-*.safetensors"):
        stale.unlink()
    paths = []
    for index, group in enumerate(groups):
        path = out / f"part-{index:02d}.safetensors"
        save_file(group, str(path))
        paths.append(path)
    info = {key: state.get(key) for key in ("step", "epoch", "audio_seconds", "best_dev_wer")}
    if "dev_bpc" in state:
        info["dev_bpc"] = state["dev_bpc"]
    info["source"] = checkpoint.name
    info["parts"] = [p.name for p in paths]
    (out / "milestone.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return paths


def read_milestone(folder: Path) -> dict[str, torch.Tensor]:
    """Every model tensor of a milestone folder (the union of its parts)."""
    info = json.loads((folder / "milestone.json").read_text(encoding="utf-8"))
    tensors: dict[str, torch.Tensor] = {}
    for name in info["parts"]:
        with safe_open(str(folder / name), framework="pt") as handle:
            tensors.update({key: handle.get_tensor(key) for key in handle.keys()})
    return tensors


def run_origin(run: Path) -> str | None:
    """The ``--init-from`` of the run's first start (``metrics.jsonl``), if any: the run's step
    and audio counters start at 0 there, after what that milestone had seen.
    """
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "started":
            origin = record.get("options", {}).get("init_from")
            return None if origin in (None, "None") else origin
    return None


def provenance(path: Path) -> dict[str, Any]:
    """What is recorded about the weights at ``path``: a milestone folder's ``milestone.json``;
    for a run folder (its newest checkpoint), a checkpoint or an export, the training state saved
    in its metadata (step, epoch, audio seconds, best dev WER, …) and, when its run started
    from other weights (``metrics.jsonl`` beside a checkpoint), ``init_from``; {} if nothing is.
    """
    if path.is_dir() and (path / "milestone.json").is_file():
        return json.loads((path / "milestone.json").read_text(encoding="utf-8"))
    if path.is_dir():
        newest = newest_checkpoint(path)
        if newest is None:
            return {}
        path = newest
    with safe_open(str(path), framework="pt") as handle:
        state = json.loads((handle.metadata() or {}).get("state", "{}"))
    if "init_from" not in state and PATTERN.match(path.name):
        origin = run_origin(path.parent)
        if origin is not None:
            state["init_from"] = origin
    return state


def export_metadata(checkpoint: Path) -> dict[str, str]:
    """safetensors metadata of a file exported from ``checkpoint``: its name and its
    ``provenance`` (JSON under ``state``, read back by ``provenance`` of the export)."""
    return {"source": str(checkpoint), "state": json.dumps(provenance(checkpoint))}


def main(argv: list[str] | None = None) -> int:
    """Write a milestone from a run, or merge one into a single checkpoint file."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.milestone", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="run folder with ckpt-*.safetensors")
    parser.add_argument("--out", type=Path, help="milestone folder to (re)write")
    parser.add_argument("--max-mb", type=float, default=7.5)
    parser.add_argument("--merge", type=Path, help="milestone folder to merge into -o FILE")
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    if args.merge is not None:
        if args.output is None:
            parser.error("--merge needs -o FILE")
        save_file(read_milestone(args.merge), str(args.output))
        print(f"wrote {args.output}")
        return 0
    if args.run is None or args.out is None:
        parser.error("give --run and --out (or --merge and -o)")
    newest = newest_checkpoint(args.run)
    if newest is None:
        parser.error(f"no checkpoint in {args.run}")
    paths = write_milestone(newest, args.out, int(args.max_mb * 2 ** 20))
    print(f"{newest} -> {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
