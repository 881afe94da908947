"""WER and CER (docs/DECODING.md, "WER and CER"): normalization, edit counts, jiwer agreement."""

from __future__ import annotations

import math
import random
from importlib.metadata import version

import pytest

from int4rt.metrics import (
    EditCounts,
    cer,
    char_errors,
    edit_counts,
    normalize_text,
    wer,
    word_errors,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello, World!", "hello world"),
    ("Don't  STOP'", "don't stop"),
    ("'tis the dogs' bones", "tis the dogs bones"),
    ("rock’n’roll", "rock'n'roll"),
    ("well-known U.S.A.", "well known u s a"),
    ("[laughter] uh-huh", "laughter uh huh"),
    ("ＦＵＬＬ width ①ﬁne", "full width 1fine"),
    ("zero\u200bwidth co\u00adoperate", "zerowidth cooperate"),
    ("  a\tb\n c  ", "a b c"),
    ("$5 + 3 = 8 & more", "$5 + 3 = 8 more"),
    ("Naïve CAFÉ", "naïve café"),
    ("...", ""),
    ("", ""),
])
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_normalize_text_is_idempotent():
    rng = random.Random(7)
    alphabet = "aB ,.'’-!?ÉéＡ\t\u00ad1"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(20)))
        once = normalize_text(text)
        assert normalize_text(once) == once


@pytest.mark.parametrize(("ref", "hyp", "expected"), [
    ("the cat sat", "the cat sat", (0, 0, 0, 3)),
    ("the cat sat", "the cat sat down", (0, 0, 1, 3)),
    ("the cat sat", "the sat", (0, 1, 0, 3)),
    ("the cat sat", "a cat sit", (2, 0, 0, 3)),
    ("", "uh uh", (0, 0, 2, 0)),
    ("a b", "", (0, 2, 0, 2)),
    ("", "", (0, 0, 0, 0)),
    ("a b", "b c", (2, 0, 0, 2)),  # the tie broken as specified (and as jiwer does)
    ("The Cat, sat!", "the cat sat", (0, 0, 0, 3)),
])
def test_word_errors(ref, hyp, expected):
    counts = word_errors(ref, hyp)
    assert isinstance(counts, EditCounts)
    assert tuple(counts) == expected
    assert counts.errors == sum(expected[:3])


def test_char_errors_and_normalize_flag():
    assert tuple(char_errors("Ab c", "abd")) == (1, 1, 0, 4)  # "ab c" → "abd"
    assert tuple(char_errors("Ab", "ab", normalize=False)) == (1, 0, 0, 2)
    assert tuple(word_errors("A b", "a b", normalize=False)) == (1, 0, 0, 2)


def test_corpus_rates_sum_edits_over_reference_lengths():
    refs = ["the cat sat", "on the mat", ""]
    hyps = ["the cat", "on a mat today", "uh"]
    assert wer(refs, hyps) == (1 + 2 + 1) / 6
    assert cer("abcd", "abd") == 1 / 4
    assert math.isnan(wer(["", "..."], ["a", ""]))
    assert math.isnan(cer([], []))
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        cer(["a", "b"], ["a"])


def test_edit_counts_on_generic_tokens():
    assert edit_counts([1, 2, 3, 3], [1, 3, 3, 3, 4]) == (1, 0, 1, 4)


def _random_pairs() -> list[tuple[str, str]]:
    """Short random sentences over tiny vocabularies (many equal-cost alignments) + edge cases."""
    rng = random.Random(11)
    pairs = [("", ""), ("", "a"), ("a", ""), ("a a a a", "a a"), ("a a", "a a a a"),
             ("a b a b a b", "b a b a b a"), ("x y z", "z y x"), ("a " * 80, "b " * 79)]
    for _ in range(1500):
        vocab = rng.choice(["ab", "abc", "abcde", "abcdefghij"])
        ref = " ".join(rng.choice(vocab) for _ in range(rng.randrange(15)))
        hyp = " ".join(rng.choice(vocab) for _ in range(rng.randrange(15)))
        pairs.append((ref, hyp))
    for _ in range(100):  # long, near-identical pairs
        ref = [rng.choice("abcdefgh") for _ in range(rng.randrange(60, 200))]
        hyp = list(ref)
        for _ in range(rng.randrange(1, 25)):
            position = rng.randrange(len(hyp) + 1)
            action = rng.randrange(3)
            if action == 0 and position < len(hyp):
                hyp[position] = rng.choice("abcdefgh")
            elif action == 1 and position < len(hyp):
                del hyp[position]
            else:
                hyp.insert(position, rng.choice("abcdefgh"))
        pairs.append((" ".join(ref), " ".join(hyp)))
    texts = ["Don't stop!", "well-known U.S.A.", "Rock’n’roll, baby", "the cat sat on the mat",
             "ＦＵＬＬ width", "uh-huh [laughter]", "it's 5 o'clock", "", "...", "A b  c"]
    pairs += [(rng.choice(texts), rng.choice(texts)) for _ in range(200)]
    return pairs


@pytest.mark.thorough
@pytest.mark.oracle
def test_counts_match_jiwer(report_count):
    jiwer = pytest.importorskip("jiwer")
    chars = jiwer.ReduceToListOfListOfChars()
    pairs = _random_pairs()
    for ref, hyp in pairs:
        theirs = jiwer.process_words(ref, hyp)
        expected = (theirs.substitutions, theirs.deletions, theirs.insertions)
        assert tuple(word_errors(ref, hyp, normalize=False))[:3] == expected, (ref, hyp)
        norm_ref, norm_hyp = normalize_text(ref), normalize_text(hyp)
        theirs = jiwer.process_words(norm_ref, norm_hyp)
        expected = (theirs.substitutions, theirs.deletions, theirs.insertions)
        assert tuple(word_errors(ref, hyp))[:3] == expected, (ref, hyp)
        theirs = jiwer.process_characters(norm_ref, norm_hyp, reference_transform=chars,
                                          hypothesis_transform=chars)
        expected = (theirs.substitutions, theirs.deletions, theirs.insertions)
        assert tuple(char_errors(ref, hyp))[:3] == expected, (ref, hyp)
    scored = [(r, h) for r, h in pairs if normalize_text(r)]
    refs = [normalize_text(r) for r, _ in scored]
    hyps = [normalize_text(h) for _, h in scored]
    assert wer(refs, hyps) == jiwer.wer(refs, hyps)
    assert cer(refs, hyps) == jiwer.cer(refs, hyps)
    report_count(f"jiwer {version('jiwer')}: {len(pairs)} pairs × (raw words, normalized "
                 "words, normalized chars) with identical S/D/I counts; corpus WER and CER equal")
