"""Transcribe the clips shipped with int4rt by its default model (what `make demo` runs).

    python examples/demo.py

The clips are held-out voices and sentences (int4rt/default_model/clips.jsonl, synthetic
speech); each is decoded with the bundle's recommended settings. Printed: the model and its
decoding, each clip's reference and hypothesis, then WER, CER and the real-time factor (decoding
time, front end included, over audio time, after one warm-up decode that loads the kernels).
"""

import time

import soundfile as sf

from int4rt.bundle import load_bundle
from int4rt.metrics import cer, wer
from int4rt.recognizer import Recognizer


def main() -> None:
    bundle = load_bundle()
    recognizer = Recognizer.default()
    clips = bundle.clips
    print(f"model: {bundle.describe()}")
    started = time.perf_counter()
    recognizer.transcribe(clips[0].audio)
    warm_up = time.perf_counter() - started
    refs, hyps, audio_s, decode_s = [], [], 0.0, 0.0
    for number, clip in enumerate(clips, start=1):
        seconds = sf.info(clip.audio).duration
        started = time.perf_counter()
        text = recognizer.transcribe(clip.audio).text
        decode_s += time.perf_counter() - started
        audio_s += seconds
        refs.append(clip.text)
        hyps.append(text)
        print(f"clip {number}/{len(clips)}: {clip.audio.name}, {seconds:.2f} s, voice {clip.voice}")
        print(f"  ref: {clip.text}")
        print(f"  hyp: {text}")
    print(f"WER {100 * wer(refs, hyps):.2f} %  CER {100 * cer(refs, hyps):.2f} %  "
          f"over {len(clips)} clips")
    print(f"RTF {decode_s / audio_s:.3f}: {decode_s:.2f} s to decode {audio_s:.2f} s of audio "
          f"(after a {warm_up:.2f} s warm-up decode)")


if __name__ == "__main__":
    main()
