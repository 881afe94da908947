"""Greedy FP32 WER of a checkpoint on freshly synthesized speech, one voice at a time.

    python -m int4rt_train.voice_probe --weights models/checkpoints/small-fp32 \\
        --config configs/small.json --texts /work/corpus/sets/test-fortunes-clean/manifest.jsonl \\
        --count 40 --voices flite:awb flite:kal16 flite:rms flite:slt espeak:en-us+m3 --cmn

The evaluation sets fix which voice reads which sentence; this probe reads the *same* sentences
(the first ``--count`` of a manifest or a text file) with every voice named, so that voices can
be compared on equal text, training voices included (docs/TRAINING.md §4, "Why the flite
voices"). A voice is ``flite:NAME``, ``espeak:ACCENT+VARIANT``, ``rhvoice:NAME``,
``pico:LANGUAGE`` or ``piper:NAME`` (seed 0), synthesized clean with ``int4rt_train.synth`` and
featurized as the corpus is. With ``--cmn`` each voice is scored a second time with every
utterance's feature mean replaced by the model's CMVN mean, which removes a fixed spectral
tilt or channel: if that closes a voice's gap, the gap was the channel. With ``--narrowband``
each voice is also synthesized through 8 kHz (sox ``rate 8000`` before the 16 kHz resampling,
as the 8 kHz recordings of ``recorded-prompts`` are written), variant ``8k``: the loss of the
band above 4 kHz on its own, apart from the speaker.
Prints one JSON line per voice and variant.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from int4rt.metrics import cer, wer
from int4rt.model.config import RnntConfig, load_config
from int4rt_train import augment, synth
from int4rt_train.checkpoint import model_tensors
from int4rt_train.corpus import Utterance
from int4rt_train.data import features_of
from int4rt_train.milestone import read_milestone
from int4rt_train.model import Transducer
from int4rt_train.train import greedy_texts


def parse_voice(spec: str) -> synth.Voice:
    """``flite:NAME``, ``espeak:ACCENT[+VARIANT]``, ``rhvoice:NAME``, ``pico:LANGUAGE`` or
    ``piper:NAME`` as a :class:`synth.Voice` at the synthesizer's default rate and pitch;
    raises ``ValueError`` naming the accepted forms otherwise."""
    engine, _, name = spec.partition(":")
    if engine not in synth.ENGINES or not name or ":" in name:
        raise ValueError(f"voice {spec!r}: expected flite:NAME, espeak:ACCENT+VARIANT, "
                         "rhvoice:NAME, pico:LANGUAGE or piper:NAME (e.g. flite:awb, "
                         "espeak:en-us+m3, rhvoice:bdl, pico:en-US, piper:joe)")
    if engine == "piper" and name not in synth.PIPER_VOICES:
        raise ValueError(f"voice {spec!r}: Piper voices here are "
                         f"{', '.join(sorted(synth.PIPER_VOICES))}")
    return synth.default_voice(engine, name)


def read_texts(path: Path, count: int) -> list[str]:
    """The first ``count`` sentences of a JSONL manifest (its ``text`` fields) or of a text
    file (one sentence a line)."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    if path.suffix == ".jsonl":
        lines = [json.loads(line)["text"] for line in lines]
    return lines[:count]


def with_mean(features: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``features`` with its per-dimension mean over frames moved to ``mean``."""
    return (features - features.mean(axis=0) + mean).astype(np.float32)


def score(model: Transducer, config: RnntConfig, texts: list[str],
          features: list[np.ndarray]) -> dict[str, float | str]:
    """Greedy WER and CER (percent) of ``features`` against ``texts``, and the first pair."""
    utterances = [Utterance(f"probe-{i:05d}", text, feats)
                  for i, (text, feats) in enumerate(zip(texts, features, strict=True))]
    hyps = greedy_texts(model, utterances, config.vocab)
    return {"wer": round(100 * wer(texts, hyps), 2), "cer": round(100 * cer(texts, hyps), 2),
            "example": f"{texts[0]} => {hyps[0]}"}


def synthesized_features(spec: str, voice: synth.Voice, texts: list[str],
                         effects: tuple[str, ...]) -> list[np.ndarray]:
    """Features of ``texts`` spoken by ``voice`` with sox ``effects`` before the 16 kHz
    resampling; a failed synthesis stops the probe with one line naming the voice."""
    try:
        return [features_of(augment.to_int16(synth.synthesize(text, voice, effects)))
                for text in texts]
    except subprocess.CalledProcessError as error:
        message = error.stderr.decode(errors="replace").strip() if error.stderr else ""
        raise SystemExit(f"voice_probe: {spec}: synthesis failed ({message or error}); "
                         "list the voices with espeak-ng --voices=en or flite -lv") from None


def main(argv: list[str] | None = None) -> int:
    """Synthesize the texts with each voice and print its greedy WER and CER."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.voice_probe",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True,
                        help="a milestone folder or a ckpt-*.safetensors file")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--texts", type=Path, required=True,
                        help="a manifest (.jsonl with 'text') or a text file, one sentence a line")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--voices", nargs="+", required=True)
    parser.add_argument("--cmn", action="store_true",
                        help="also score with each utterance's feature mean set to the CMVN mean")
    parser.add_argument("--narrowband", action="store_true",
                        help="also score each voice synthesized through 8 kHz")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        voices = [parse_voice(spec) for spec in args.voices]
    except ValueError as error:
        parser.error(str(error))
    if not args.texts.is_file():
        parser.error(f"--texts {args.texts} is not a file")
    if not args.weights.exists():
        parser.error(f"--weights {args.weights}: no such milestone folder or checkpoint file")
    config = load_config(args.config)
    if not isinstance(config, RnntConfig):
        parser.error("--config must be an rnnt config")
    torch.set_num_threads(args.threads)
    try:
        synth.check_tools({voice.engine for voice in voices}, texts=False)
    except synth.MissingToolError as error:
        raise SystemExit(f"voice_probe: {error}") from None
    flite = synth.flite_voices() if any(v.engine == "flite" for v in voices) else ()
    unknown = [spec for spec, voice in zip(args.voices, voices, strict=True)
               if voice.engine == "flite" and voice.name not in flite]
    if unknown:
        parser.error(f"unknown flite voice {', '.join(unknown)}: flite has {', '.join(flite)}")
    model = Transducer(config)
    model.load_state_dict(read_milestone(args.weights) if args.weights.is_dir()
                          else model_tensors(args.weights))
    mean = model.frontend.cmvn_mean.numpy()
    texts = read_texts(args.texts, args.count)
    bands = {"": ()} | ({"8k": ("rate", "8000")} if args.narrowband else {})
    for spec, voice in zip(args.voices, voices, strict=True):
        variants = {}
        for band, effects in bands.items():
            variants[band] = features = synthesized_features(spec, voice, texts, effects)
            if args.cmn:
                variants["+".join(filter(None, (band, "cmn")))] = [
                    with_mean(feats, mean) for feats in features]
        for variant, feats in variants.items():
            print(json.dumps({"voice": spec, **({"variant": variant} if variant else {}),
                              "utterances": len(texts), **score(model, config, texts, feats)}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
