"""Augmentation: speed, tempo and pitch shift, telephone band (sox effects), noise and gain.

An :class:`Augmentation` is drawn once per utterance from a seeded generator; its sox parts
run inside :func:`synth.synthesize`, its noise and gain part on the samples afterwards.
Noise is synthetic (white, pink or brown), mixed at a signal-to-noise ratio measured over the
whole utterance. Levels are kept below full scale, never clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SNRS_DB = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0)
NOISE_COLORS = ("white", "pink", "brown")
PEAK_LIMIT = 0.98
SHIFT_CENTS = (-250, 400)


@dataclass(frozen=True)
class Augmentation:
    """One utterance's perturbation; the defaults leave the audio as synthesized."""

    speed: float = 1.0
    tempo: float = 1.0
    telephone: bool = False
    noise: str | None = None
    snr_db: float = 0.0
    gain_db: float = 0.0
    shift_cents: int = 0

    def sox_effects(self) -> tuple[str, ...]:
        """The sox effect chain for speed, tempo and pitch shift, at the synthesizer's rate.

        sox ``pitch`` moves the whole spectrum, formants included, at constant duration: a
        crude change of vocal-tract length, i.e. of speaker.
        """
        effects: list[str] = []
        if self.speed != 1.0:
            effects += ["speed", f"{self.speed:.3f}"]
        if self.shift_cents:
            effects += ["pitch", str(self.shift_cents)]
        if self.tempo != 1.0:
            effects += ["tempo", "-s", f"{self.tempo:.3f}"]
        return tuple(effects)

    def band_effects(self) -> tuple[str, ...]:
        """Band limiting to 300–3400 Hz, run at 16 kHz (an 8 kHz voice slowed down by speed
        and pitch has its Nyquist frequency below 3400 Hz)."""
        return ("sinc", "300-3400") if self.telephone else ()

    def label(self) -> str:
        """A compact description for manifests, e.g. ``speed1.1+noise:pink@10+gain-6``."""
        parts = []
        if self.speed != 1.0:
            parts.append(f"speed{self.speed:g}")
        if self.tempo != 1.0:
            parts.append(f"tempo{self.tempo:.2f}")
        if self.shift_cents:
            parts.append(f"shift{self.shift_cents:+d}")
        if self.telephone:
            parts.append("telephone")
        if self.noise is not None:
            parts.append(f"noise:{self.noise}@{self.snr_db:g}")
        if self.gain_db != 0.0:
            parts.append(f"gain{self.gain_db:+.0f}")
        return "+".join(parts) or "clean"


def training_augmentation(rng: np.random.Generator) -> Augmentation:
    """A random training perturbation: each part on with a fixed probability."""
    speed = float(rng.choice((0.9, 1.1))) if rng.random() < 0.3 else 1.0
    tempo = float(rng.uniform(0.85, 1.15)) if rng.random() < 0.3 else 1.0
    telephone = bool(rng.random() < 0.15)
    noisy = rng.random() < 0.5
    noise = str(rng.choice(NOISE_COLORS)) if noisy else None
    snr = float(rng.choice(SNRS_DB[1:])) if noisy else 0.0
    gain = float(rng.uniform(-20.0, 0.0)) if rng.random() < 0.5 else 0.0
    shift = int(rng.integers(SHIFT_CENTS[0], SHIFT_CENTS[1] + 1)) if rng.random() < 0.35 else 0
    return Augmentation(speed, tempo, telephone, noise, snr, gain, shift)


def colored_noise(color: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise of power 1 with a flat (white), 1/f (pink) or 1/f² (brown) spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(size))
    spectrum[0] = 0.0
    if color != "white":
        exponent = {"pink": 0.5, "brown": 1.0}[color]
        spectrum[1:] /= np.arange(1, spectrum.size, dtype=np.float64) ** exponent
    noise = np.fft.irfft(spectrum, n=size)
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)


def apply_noise_and_gain(samples: np.ndarray, aug: Augmentation,
                         rng: np.random.Generator) -> np.ndarray:
    """Mix noise at ``aug.snr_db`` and apply ``aug.gain_db``; peaks scaled to ≤ PEAK_LIMIT."""
    audio = samples.astype(np.float64)
    if aug.noise is not None:
        power = float(np.mean(audio ** 2))
        noise = colored_noise(aug.noise, audio.size, rng)
        audio = audio + noise * np.sqrt(power / 10.0 ** (aug.snr_db / 10.0))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > PEAK_LIMIT:
        audio *= PEAK_LIMIT / peak
    return (audio * 10.0 ** (aug.gain_db / 20.0)).astype(np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """16-bit PCM of samples in [-1, 1): round to nearest (the levels never reach full scale)."""
    return np.round(samples.astype(np.float64) * 32768.0).astype(np.int16)
