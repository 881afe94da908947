"""Training batches from corpus shards: transcripts to ids, length-bucketed batches, padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from int4rt_train.corpus import Utterance


def text_ids(text: str, vocab: Sequence[str]) -> list[int]:
    """Character ids of ``text`` in ``vocab`` (every character must be a vocabulary symbol)."""
    index = {symbol: i for i, symbol in enumerate(vocab)}
    try:
        return [index[char] for char in text]
    except KeyError as error:
        raise ValueError(f"transcript {text!r} has character {error.args[0]!r} outside the "
                         "model's vocabulary") from None


def ids_text(ids: Sequence[int], vocab: Sequence[str]) -> str:
    """The text of character ids (blank never appears in a hypothesis)."""
    return "".join(vocab[i] for i in ids)


def make_batches(frames: Sequence[int], budget: int, max_batch: int,
                 rng: np.random.Generator) -> list[list[int]]:
    """Utterance indices grouped by similar length, padded size (longest × count) ≤ ``budget``.

    Sorted by length with random tie-breaking (so each utterance is the longest of its batch
    so far), cut greedily, then the batch order shuffled.
    """
    order = sorted(range(len(frames)), key=lambda i: (frames[i], rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (frames[index] * (len(current) + 1) > budget or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(utterances: Sequence[Utterance], vocab: Sequence[str]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded features [B, T, F], frame lengths [B], labels [B, U] (0-padded), label lengths."""
    frames = [u.features.shape[0] for u in utterances]
    width = utterances[0].features.shape[1]
    features = np.zeros((len(utterances), max(frames), width), dtype=np.float32)
    ids = [text_ids(u.text, vocab) for u in utterances]
    labels = np.zeros((len(utterances), max(1, max(len(i) for i in ids))), dtype=np.int64)
    for row, (utt, label) in enumerate(zip(utterances, ids, strict=True)):
        features[row, :frames[row]] = utt.features
        labels[row, :len(label)] = label
    return (torch.from_numpy(features), torch.tensor(frames), torch.from_numpy(labels),
            torch.tensor([len(i) for i in ids]))
