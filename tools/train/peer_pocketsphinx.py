"""The peer of the accuracy table: pocketsphinx on the same audio (docs/RESULTS.md, "Accuracy").

    python -m int4rt_train.peer_pocketsphinx --sets test-fortunes-clean --limit 20

pocketsphinx 5 (PyPI ``pocketsphinx``, the ``peers`` extra) with the US English model it
ships: the default acoustic model, 3-gram LM and dictionary. Its words are lowercased and
reduced to the RNN-T's character set (any other character becomes a space), then scored with
int4rt's WER/CER and text normalization like every row of the table.

Its hypotheses do not depend on any int4rt model, so a run can keep them: ``--hypotheses FILE``
writes a record (every hypothesis, each audio file's SHA-256, the CPU time), and
``int4rt_train.accuracy --peer-from FILE`` reuses one after checking that it covers the same
utterances with byte-identical audio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from int4rt.bundle import file_digest
from int4rt.frontend import load_audio
from int4rt.manifests import Item
from int4rt_train.accuracy_table import Tally

SAMPLE_RATE = 16000  # the bundled en-us acoustic model's rate
RECORD_FORMAT = "int4rt-peer-hypotheses/1"


def to_charset(text: str, vocab: tuple[str, ...]) -> str:
    """Lowercase; characters outside ``vocab`` become spaces; single spaces, none at the ends."""
    allowed = {symbol for symbol in vocab if len(symbol) == 1}
    return " ".join("".join(c if c in allowed else " " for c in text.lower()).split())


class PocketSphinx:
    """One pocketsphinx decoder, reused for every utterance."""

    def __init__(self, vocab: tuple[str, ...]) -> None:
        from pocketsphinx import Decoder

        self.vocab = vocab
        self.name = f"pocketsphinx {version('pocketsphinx')}"
        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def transcribe(self, path: str | Path) -> str:
        """The best hypothesis for an audio file (resampled to 16 kHz), in our charset."""
        samples = load_audio(str(path), SAMPLE_RATE)
        pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return to_charset(hyp.hypstr if hyp is not None else "", self.vocab)


def peer_record(sets: dict[str, list[Item]], vocab: tuple[str, ...]) -> dict:
    """Transcribe every item of every set: the record ``--hypotheses`` writes."""
    start = time.process_time()
    peer = PocketSphinx(vocab)
    hypotheses: dict[str, dict[str, str]] = {}
    digests: dict[str, dict[str, str]] = {}
    for set_name, items in sets.items():
        for item in items:
            hypotheses.setdefault(set_name, {})[item.key] = peer.transcribe(item.path)
            digests.setdefault(set_name, {})[item.key] = file_digest(Path(item.path))
        print(f"{peer.name}: {set_name} done", file=sys.stderr, flush=True)
    return {"format": RECORD_FORMAT, "peer": peer.name,
            "cpu_seconds": round(time.process_time() - start, 1),
            "hypotheses": hypotheses, "audio_sha256": digests}


def reused_record(path: Path, sets: dict[str, list[Item]]) -> dict:
    """A record written before, checked to hold every item of ``sets`` with unchanged audio.

    Raises ``SystemExit`` naming the first problem: no such file, not a record, an utterance
    it lacks, or an audio file whose bytes changed since.
    """
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"--peer-from: no such file {path}; write one with "
                         "python -m int4rt_train.peer_pocketsphinx --hypotheses FILE") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SystemExit(f"--peer-from: {path} is not a peer record ({error})") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or not all(
            isinstance(record.get(key), dict) for key in ("hypotheses", "audio_sha256")):
        raise SystemExit(f"--peer-from: {path} is not a peer record (format "
                         f"{RECORD_FORMAT!r} with hypotheses and audio_sha256 expected)")
    for set_name, items in sets.items():
        hypotheses = record["hypotheses"].get(set_name)
        digests = record["audio_sha256"].get(set_name)
        if not isinstance(hypotheses, dict) or not isinstance(digests, dict):
            raise SystemExit(f"--peer-from: {path} has no set {set_name}; rerun the peer on "
                             "these sets")
        for item in items:
            if item.key not in hypotheses:
                raise SystemExit(f"--peer-from: {path} has no hypothesis for {set_name} "
                                 f"{item.key}; rerun the peer on these sets and --limit")
            if digests.get(item.key) != file_digest(Path(item.path)):
                raise SystemExit(f"--peer-from: {item.path} changed since {path} was "
                                 "written; rerun the peer")
    return record


def main(argv: list[str] | None = None) -> int:
    """WER and CER of pocketsphinx per set, one JSON line each."""
    from int4rt.model.config import load_config
    from int4rt_train.accuracy import TEST_SETS, first_items

    parser = argparse.ArgumentParser(prog="python -m int4rt_train.peer_pocketsphinx",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    parser.add_argument("--sets", nargs="+", default=list(TEST_SETS))
    parser.add_argument("--limit", type=int, help="first N utterances (by id) of each set")
    parser.add_argument("--config", type=Path, default=Path("configs/small.json"),
                        help="the RNN-T config whose vocabulary is the character set")
    parser.add_argument("--hypotheses", type=Path,
                        help="also write the record int4rt_train.accuracy --peer-from reuses")
    args = parser.parse_args(argv)
    sets = {name: first_items(args.corpus / "sets" / name / "manifest.jsonl", args.limit)
            for name in args.sets}
    record = peer_record(sets, tuple(load_config(args.config).vocab))
    for name, items in sets.items():
        tally = Tally()
        for item in items:
            tally.add(item.reference or "", record["hypotheses"][name][item.key])
        print(json.dumps({"set": name, "utterances": tally.utterances,
                          "wer": round(100 * tally.wer, 2), "cer": round(100 * tally.cer, 2)}),
              flush=True)
    if args.hypotheses:
        args.hypotheses.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
