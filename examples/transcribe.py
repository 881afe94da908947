"""Transcribe one file with beam search and density-ratio LM fusion (the Python API, end to end).

    python examples/transcribe.py [MODEL EXT_LM SOURCE_LM AUDIO]

Without arguments it writes random tiny models and a second of noise to a temporary folder
(no trained model ships yet), so the words are meaningless but every step is real.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

import int4rt
from int4rt.model.config import load_config
from int4rt.model.container import save_model
from int4rt.model.random_model import random_model


def demo_files(folder: Path) -> list[str]:
    """Random tiny RNN-T and LMs (configs/tiny.json, lm-tiny.json) and 1 s of noise."""
    configs = Path(__file__).parents[1] / "configs"
    paths = [folder / name for name in ("model.safetensors", "ext.safetensors",
                                        "src.safetensors", "noise.wav")]
    for path, config, seed in zip(paths[:3], ("tiny", "lm-tiny", "lm-tiny"), (0, 1, 2),
                                  strict=True):
        save_model(random_model(load_config(configs / f"{config}.json"), seed), path)
    sf.write(paths[3], 0.3 * np.random.default_rng(0).standard_normal(8000), 8000)
    return [str(path) for path in paths]


def main(model: str, ext_lm: str, source_lm: str, audio: str) -> None:
    recognizer = int4rt.load(model)
    result = recognizer.transcribe(audio, method="beam", beam=8, lm=ext_lm, lm_weight=0.5,
                                   source_lm=source_lm, source_lm_weight=0.3, length_reward=0.2)
    print("text:", repr(result.text))
    print("times_s:", [round(t, 2) for t in result.times_s])
    print("score (nats):", result.score / 2**result.frac_bits)
    for name, value in result.components.items():
        print(f"  {name:>6}: {value / 2**result.frac_bits:+.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 5:
        main(*sys.argv[1:])
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(*demo_files(Path(folder)))
