"""Transcribe one file with the Python API: text, times, score and its components.

    python examples/transcribe.py [AUDIO [MODEL [EXT_LM SOURCE_LM]]]

Without a model it uses the default model shipped with int4rt and its recommended decoding
(``Recognizer.default()``); without audio, the first shipped clip. With a model and two LMs it
decodes with beam 8 and density-ratio fusion (external weight 0.5, source weight 0.3).
"""

import sys

import int4rt
from int4rt.bundle import load_bundle


def main(audio: str, model: str | None = None, ext_lm: str | None = None,
         source_lm: str | None = None) -> None:
    recognizer = int4rt.load(model)  # no path: the default model
    options = {}
    if ext_lm is not None:
        options = dict(method="beam", beam=8, lm=ext_lm, lm_weight=0.5, source_lm=source_lm,
                       source_lm_weight=0.3)
    result = recognizer.transcribe(audio, **options)
    print("text:", repr(result.text))
    print("times_s:", [round(t, 2) for t in result.times_s])
    print("score (nats):", result.score / 2**result.frac_bits)
    for name, value in result.components.items():
        print(f"  {name:>6}: {value / 2**result.frac_bits:+.3f}")


if __name__ == "__main__":
    if len(sys.argv) not in (1, 2, 3, 5):
        sys.exit(__doc__)
    main(*(sys.argv[1:] or [str(load_bundle().clips[0].audio)]))
