"""Word and character error rates with a documented text normalization.

Specified in docs/DECODING.md, "WER and CER": ``normalize_text``, the Levenshtein alignment
(unit costs; common prefix and suffix matched first; a fixed backtrace order that makes the
substitution/deletion/insertion split agree with jiwer 4.x), and corpus rates as the sum of
edits over the sum of reference lengths.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

import numba as nb
import numpy as np

_APOSTROPHES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'"})


class EditCounts(NamedTuple):
    """Edits turning a reference into a hypothesis, and the reference length (words or chars)."""

    substitutions: int
    deletions: int
    insertions: int
    ref_length: int

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions


def normalize_text(text: str) -> str:
    """Text as scored (DECODING.md, Text normalization).

    NFKC; ‘ ’ ʼ → '; lowercase; an apostrophe stays only between two alphanumeric characters;
    other punctuation (Unicode category P*) becomes a space; format characters (Cf, e.g.
    zero-width space, soft hyphen) are removed; whitespace runs become one space, none at
    the ends.
    """
    chars = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    out = []
    for index, char in enumerate(chars):
        category = unicodedata.category(char)
        if char == "'":
            inside = 0 < index < len(chars) - 1 and chars[index - 1].isalnum() \
                and chars[index + 1].isalnum()
            out.append("'" if inside else " ")
        elif category.startswith("P"):
            out.append(" ")
        elif category != "Cf":
            out.append(char)
    return " ".join("".join(out).split())


def edit_counts(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> EditCounts:
    """S, D, I of the canonical alignment of two sequences (DECODING.md, Alignment and counts).

    Unit-cost Levenshtein distance D over the two sequences after removing their common
    prefix and suffix; backtrace from the end, at (i, j) taking, in this order: a deletion
    if D[i][j] = D[i−1][j] + 1; else an insertion if j ≥ 2 and D[i][j−1] = D[i−1][j−1] − 1;
    else the diagonal (a substitution if ref[i−1] ≠ hyp[j−1]).
    """
    start = 0
    while start < min(len(ref), len(hyp)) and ref[start] == hyp[start]:
        start += 1
    end_ref, end_hyp = len(ref), len(hyp)
    while end_ref > start and end_hyp > start and ref[end_ref - 1] == hyp[end_hyp - 1]:
        end_ref -= 1
        end_hyp -= 1
    ids: dict[Hashable, int] = {}
    r = np.array([ids.setdefault(item, len(ids)) for item in ref[start:end_ref]], np.int32)
    h = np.array([ids.setdefault(item, len(ids)) for item in hyp[start:end_hyp]], np.int32)
    subs, dels, ins = _backtrace_counts(r, h)
    return EditCounts(subs, dels, ins, len(ref))


def _backtrace_counts(ref: np.ndarray, hyp: np.ndarray) -> tuple[int, int, int]:
    """(S, D, I) of the canonical backtrace from (len(ref), len(hyp)), in two DP rows.

    The backtrace's choice at cell (i, j) depends only on D[i][j], D[i−1][j], D[i][j−1] and
    D[i−1][j−1], all known when row i is computed from row i−1. So each cell carries the
    counts of the backtrace that starts there: a deletion takes those of (i−1, j), an
    insertion those of (i, j−1), the diagonal those of (i−1, j−1). A path from (i, j) to
    (0, 0) has D − I = i − j, so S and I are carried and D follows. Memory is O(len(hyp))
    instead of the len(ref) × len(hyp) matrix.
    """
    subs, ins = (int(count) for count in _two_row_counts(ref, hyp))
    return subs, ins + len(ref) - len(hyp), ins


@nb.njit(cache=True)
def _two_row_counts(ref: np.ndarray, hyp: np.ndarray) -> tuple[int, int]:
    width = hyp.shape[0] + 1
    dist = np.arange(width)  # D[0][j] = j: j insertions, no substitution
    subs = np.zeros(width, np.int64)
    ins = np.arange(width)
    row, row_subs, row_ins = np.empty_like(dist), np.empty_like(subs), np.empty_like(ins)
    for i in range(1, ref.shape[0] + 1):
        row[0], row_subs[0], row_ins[0] = i, 0, 0  # (i, 0): i deletions
        for j in range(1, width):
            differs = 1 if ref[i - 1] != hyp[j - 1] else 0
            best = min(dist[j] + 1, row[j - 1] + 1, dist[j - 1] + differs)
            row[j] = best
            if best == dist[j] + 1:  # deletion
                row_subs[j], row_ins[j] = subs[j], ins[j]
            elif j >= 2 and row[j - 1] == dist[j - 1] - 1:  # insertion
                row_subs[j], row_ins[j] = row_subs[j - 1], row_ins[j - 1] + 1
            else:  # diagonal
                row_subs[j], row_ins[j] = subs[j - 1] + differs, ins[j - 1]
        dist, row = row, dist
        subs, row_subs = row_subs, subs
        ins, row_ins = row_ins, ins
    return subs[width - 1], ins[width - 1]


def word_errors(ref: str, hyp: str, *, normalize: bool = True) -> EditCounts:
    """(substitutions, deletions, insertions, reference words) of one utterance.

    Words are ``normalize_text`` output (or, with ``normalize=False``, the text) split on
    whitespace.
    """
    if normalize:
        ref, hyp = normalize_text(ref), normalize_text(hyp)
    return edit_counts(ref.split(), hyp.split())


def char_errors(ref: str, hyp: str, *, normalize: bool = True) -> EditCounts:
    """(substitutions, deletions, insertions, reference characters) of one utterance.

    Characters of the ``normalize_text`` output (single spaces between words count), or of
    the text as given with ``normalize=False``.
    """
    if normalize:
        ref, hyp = normalize_text(ref), normalize_text(hyp)
    return edit_counts(ref, hyp)


def wer(refs: str | Sequence[str], hyps: str | Sequence[str], *,
        normalize: bool = True) -> float:
    """Corpus word error rate: Σ (S + D + I) / Σ reference words (DECODING.md, WER and CER).

    NaN when the references hold no words at all (the rate is undefined).
    """
    return _rate(word_errors, refs, hyps, normalize)


def cer(refs: str | Sequence[str], hyps: str | Sequence[str], *,
        normalize: bool = True) -> float:
    """Corpus character error rate: Σ (S + D + I) / Σ reference characters; NaN if none."""
    return _rate(char_errors, refs, hyps, normalize)


def _rate(count: Callable[..., EditCounts], refs: str | Sequence[str],
          hyps: str | Sequence[str], normalize: bool) -> float:
    refs = [refs] if isinstance(refs, str) else list(refs)
    hyps = [hyps] if isinstance(hyps, str) else list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses; they must pair up")
    totals = [count(ref, hyp, normalize=normalize) for ref, hyp in zip(refs, hyps, strict=True)]
    length = sum(t.ref_length for t in totals)
    return sum(t.errors for t in totals) / length if length else math.nan
