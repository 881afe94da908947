"""The peer of the accuracy table: pocketsphinx on the same audio (docs/RESULTS.md, "Accuracy").

    python -m int4rt_train.peer_pocketsphinx --sets test-fortunes-clean --limit 20

pocketsphinx 5 (PyPI ``pocketsphinx``, the ``peers`` extra) with the US English model it
ships: the default acoustic model, 3-gram LM and dictionary. Its words are lowercased and
reduced to the RNN-T's character set (any other character becomes a space), then scored with
int4rt's WER/CER and text normalization like every row of the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from int4rt.frontend import load_audio
from int4rt_train.accuracy_table import Tally

SAMPLE_RATE = 16000  # the bundled en-us acoustic model's rate


def to_charset(text: str, vocab: tuple[str, ...]) -> str:
    """Lowercase; characters outside ``vocab`` become spaces; single spaces, none at the ends."""
    allowed = {symbol for symbol in vocab if len(symbol) == 1}
    return " ".join("".join(c if c in allowed else " " for c in text.lower()).split())


class PocketSphinx:
    """One pocketsphinx decoder, reused for every utterance."""

    def __init__(self, vocab: tuple[str, ...]) -> None:
        from pocketsphinx import Decoder

        self.vocab = vocab
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
    args = parser.parse_args(argv)
    peer = PocketSphinx(tuple(load_config(args.config).vocab))
    for name in args.sets:
        tally = Tally()
        for item in first_items(args.corpus / "sets" / name / "manifest.jsonl", args.limit):
            tally.add(item.reference or "", peer.transcribe(item.path))
        print(json.dumps({"set": name, "utterances": tally.utterances,
                          "wer": round(100 * tally.wer, 2), "cer": round(100 * tally.cer, 2)}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
