"""Training and evaluation text: Debian ``fortunes`` (source domain) and ``bible-kjv`` (target).

Sentences are cleaned to the model's character set (lower-case letters, space, apostrophe
between letters); anything a synthesizer would read differently from its transcript (digits,
abbreviations, acronyms, symbols) is dropped, never rewritten. Every sentence of the reserved
held-out file is removed from every split, and splits are assigned by a seeded hash of the
cleaned text, so the same sentence always lands in the same split.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

CHARSET = " 'abcdefghijklmnopqrstuvwxyz"
VOCAB = ("<blk>", " ", "'", *"abcdefghijklmnopqrstuvwxyz")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
MIN_WORDS, MAX_WORDS, MAX_CHARS = 3, 22, 120
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc ie eg co inc ltd prof gen col sgt capt lt rev".split())
_DROP_PUNCT = re.compile(r"[.,;:!?\"()\[\]`*]")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")
_BAD_WORD_APOSTROPHE = re.compile(r"(^|\s)'+|'+(\s|$)")


def clean_words(raw: str) -> list[str] | None:
    """The words of ``raw`` in the model's character set (lower case, hyphens as spaces,
    punctuation and quoting apostrophes removed), or None when a word would not be read as
    written (an acronym, an abbreviation, a character outside ``CHARSET``)."""
    if _ACRONYM.search(raw):
        return None
    text = raw.replace("\u2019", "'").replace("--", " ").replace("-", " ")
    text = _DROP_PUNCT.sub(" ", text).lower()
    text = _BAD_WORD_APOSTROPHE.sub(" ", _BAD_WORD_APOSTROPHE.sub(" ", text))
    words = text.split()
    if any(word.strip("'") in ABBREVIATIONS or set(word) - set(CHARSET) for word in words):
        return None
    return words


def clean_sentence(raw: str) -> str | None:
    """The sentence in the model's character set, or None when it cannot be kept verbatim."""
    words = None if re.search(r"\d", raw) else clean_words(raw)
    if words is None or not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    text = " ".join(words)
    return text if len(text) <= MAX_CHARS else None


def fortune_files(directory: Path = FORTUNES_DIR) -> list[Path]:
    """The plain-text fortune files (no ``.dat`` index, no ``.u8`` copy), sorted by name."""
    return sorted(path for path in directory.iterdir()
                  if path.is_file() and path.suffix not in {".dat", ".u8"})


def fortune_sentences(files: Iterable[Path]) -> Iterator[str]:
    """Raw sentences of every fortune (attribution lines dropped), in file order."""
    for path in files:
        for fortune in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [line.strip() for line in fortune.splitlines()
                     if not line.strip().startswith("--")]
            yield from _SENTENCE_END.split(" ".join(line for line in lines if line))


def bible_verses() -> list[str]:
    """Every KJV verse's text, in canonical order (Debian ``bible-kjv``)."""
    result = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, check=True)
    verses = []
    for line in result.stdout.splitlines():
        reference, _, text = line.partition(" ")
        if text and re.match(r"^\w+\d+:\d+$", reference):
            verses.append(text)
    return verses


def bible_clauses(verse: str) -> list[str]:
    """Clauses of a verse split at sentence punctuation, each cleaned (None dropped)."""
    return [text for part in _SENTENCE_END.split(verse) if (text := clean_sentence(part))]


def normalize_heldout(lines: Iterable[str]) -> frozenset[str]:
    """Held-out sentences in the cleaned form (whitespace-normalized, lower case)."""
    return frozenset(" ".join(line.lower().split()) for line in lines if line.strip())


def is_heldout(text: str, heldout: frozenset[str]) -> bool:
    """True when ``text`` equals, contains or is contained in a held-out sentence."""
    return any(text == held or held in text or text in held for held in heldout)


def split_of(text: str, seed: int, dev_share: float, test_share: float) -> str:
    """'dev', 'test' or 'train' from a seeded hash of the text (stable across runs)."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    value = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    if value < dev_share:
        return "dev"
    if value < dev_share + test_share:
        return "test"
    return "train"


def unique(texts: Iterable[str | None]) -> list[str]:
    """Distinct non-None texts in first-seen order."""
    seen: dict[str, None] = {}
    for text in texts:
        if text is not None:
            seen.setdefault(text, None)
    return list(seen)
