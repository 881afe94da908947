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


def voice_repeats(spec: str) -> dict[str, int]:
    """``--repeat-voice`` parsed: ``"flite:awb=3,espeak:en-us=2"`` to {voice prefix: count}."""
    repeats: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        prefix, _, count = item.rpartition("=")
        if not prefix or not count.isdigit() or int(count) < 1:
            raise ValueError(f"--repeat-voice {item!r}: give VOICE_PREFIX=COUNT with a whole "
                             "count of at least 1, e.g. flite:awb=3")
        repeats[prefix] = int(count)
    return repeats


def repeat_voices(utterances: Sequence[Utterance], repeats: dict[str, int]) -> list[Utterance]:
    """``utterances`` with each one whose voice starts with a prefix of ``repeats`` listed that
    many times (the first matching prefix counts), so an epoch sees those voices more often.
    A prefix that no utterance's voice starts with is a ValueError (a misspelt voice).
    """
    out: list[Utterance] = []
    matched: set[str] = set()
    for utt in utterances:
        prefix = next((p for p in repeats if utt.voice.startswith(p)), None)
        matched.add(prefix)
        out.extend([utt] * (1 if prefix is None else repeats[prefix]))
    unmatched = [prefix for prefix in repeats if prefix not in matched]
    if unmatched:
        raise ValueError(f"--repeat-voice: no training utterance has a voice starting with "
                         f"{', '.join(unmatched)} (voices are as in the shards' manifests, e.g. "
                         "flite:awb or espeak:en-us)")
    return out


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
