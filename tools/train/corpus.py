"""On-disk corpus layout: feature shards (``<name>.npy`` + ``<name>.jsonl``) and their reader.

A shard holds the float32 features of many utterances concatenated along time
(``[frames, feature_dim]``, int4rt's own front end) and one JSON line per utterance with its
``text``, ``offset`` and ``frames`` into that array, its voice and its augmentation. The
``.jsonl`` is written last and renamed into place, so a shard whose index exists is complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Utterance:
    """One utterance of a shard: its features (a read-only view) and its transcript."""

    uid: str
    text: str
    features: np.ndarray
    voice: str = ""  # the manifest's synthesizer voice, e.g. "flite:awb"


def write_shard(path_stem: Path, rows: list[dict], features: list[np.ndarray]) -> None:
    """Write ``<stem>.npy`` and then ``<stem>.jsonl`` (atomically, index last)."""
    offsets = np.cumsum([0] + [f.shape[0] for f in features])
    stacked = np.concatenate(features).astype(np.float32)
    tmp_npy = path_stem.with_suffix(".npy.tmp")
    with open(tmp_npy, "wb") as handle:
        np.save(handle, stacked, allow_pickle=False)
    os.replace(tmp_npy, path_stem.with_suffix(".npy"))
    tmp_index = path_stem.with_suffix(".jsonl.tmp")
    with open(tmp_index, "w", encoding="utf-8") as handle:
        for row, start, stop in zip(rows, offsets[:-1], offsets[1:], strict=True):
            handle.write(json.dumps({**row, "offset": int(start), "frames": int(stop - start)})
                         + "\n")
    os.replace(tmp_index, path_stem.with_suffix(".jsonl"))


def read_shard(path_stem: Path) -> list[Utterance]:
    """Every utterance of a complete shard; features memory-mapped, read-only."""
    features = np.load(path_stem.with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
    utterances = []
    with open(path_stem.with_suffix(".jsonl"), encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            start = row["offset"]
            utterances.append(Utterance(row["id"], row["text"],
                                        features[start:start + row["frames"]],
                                        row.get("voice", "")))
    return utterances


def complete_shards(directory: Path, prefix: str) -> list[Path]:
    """Stems of the complete shards ``<prefix>-*`` in ``directory``, sorted."""
    return sorted(path.with_suffix("") for path in directory.glob(f"{prefix}-*.jsonl"))
