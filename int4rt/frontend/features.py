"""Log-Mel filterbank features with Δ and ΔΔ, up to (not including) global CMVN.

Every step, constant and rounding rule is in docs/DECODING.md, "Front end": framing without
padding, periodic Hann window, power spectrum of an FFT of the next power of two, HTK-mel
triangular filters from 0 Hz to Nyquist, natural log floored at 1e-10, regression deltas
over ±2 frames with edge replication. float64 inside, float32 out. CMVN and the input
quantizer follow in ``RnntModel.quantize_features``; frame stacking in the encoder.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from int4rt.errors import Int4rtError
from int4rt.frontend.audio import AudioError, load_audio
from int4rt.model.rnnt import Frontend

LOG_FLOOR = 1e-10
DELTA_WINDOW = 2
FRAME_BLOCK = 128  # frames per FFT call in log_mel; any value gives the same features


class FrameGeometry(NamedTuple):
    """Analysis window and hop in samples and the FFT size (DECODING.md, Framing)."""

    window: int
    hop: int
    n_fft: int


def frame_geometry(frontend: Frontend) -> FrameGeometry:
    """Window and hop: round(rate · ms / 1000) half up, exactly; FFT: next power of two ≥ window."""
    window = _ms_to_samples(frontend.sample_rate, frontend.frame_length_ms)
    hop = _ms_to_samples(frontend.sample_rate, frontend.frame_shift_ms)
    if window < 1 or hop < 1:
        raise Int4rtError(
            f"frontend: frame_length_ms={frontend.frame_length_ms} and frame_shift_ms="
            f"{frontend.frame_shift_ms} at {frontend.sample_rate} Hz give a window of {window} "
            f"and a hop of {hop} samples; both must be at least 1")
    return FrameGeometry(window, hop, 1 << (window - 1).bit_length())


def _ms_to_samples(sample_rate: int, ms: float) -> int:
    return math.floor(Fraction(sample_rate) * Fraction(ms) / 1000 + Fraction(1, 2))


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595 · log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``: 700 · (10^(m / 2595) − 1)."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular filter weights float64 [n_mels, n_fft/2 + 1] (DECODING.md, Mel filterbank).

    ``n_mels + 2`` edge frequencies equally spaced on the HTK mel scale from 0 Hz to
    ``sample_rate / 2``; filter m rises linearly in Hz from edge m to edge m+1 and falls to
    edge m+2, evaluated at the bin frequencies k · sample_rate / n_fft. Read-only (cached).
    """
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2))
    bins = np.arange(n_fft // 2 + 1, dtype=np.float64) * sample_rate / n_fft
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - left) / (center - left)
    falling = (right - bins) / (right - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights.flags.writeable = False
    return weights


class _SparseFilterbank(NamedTuple):
    """The non-zero weights of ``mel_filterbank``, filter by filter, bins ascending."""

    bins: np.ndarray     # the bin of each weight
    weights: np.ndarray  # the weight
    starts: np.ndarray   # index of each filter's first weight


@lru_cache(maxsize=16)
def _sparse_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> _SparseFilterbank:
    dense = mel_filterbank(sample_rate, n_fft, n_mels)
    keep = dense > 0
    keep[~keep.any(axis=1), 0] = True  # an empty filter keeps one zero weight: its energy is 0
    filters, bins = np.nonzero(keep)   # row-major: filter by filter, bins ascending
    return _SparseFilterbank(bins, dense[filters, bins], np.searchsorted(filters, range(n_mels)))


@lru_cache(maxsize=16)
def _hann(window: int) -> np.ndarray:
    """Periodic Hann window: 0.5 − 0.5 · cos(2π n / window), n = 0 … window − 1."""
    values = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(window) / window)
    values.flags.writeable = False
    return values


def log_mel(audio: np.ndarray, frontend: Frontend) -> np.ndarray:
    """Natural-log Mel energies float64 [T, n_mels], T = 1 + (N − window) // hop."""
    window, hop, n_fft = frame_geometry(frontend)
    samples = _check_audio(audio, window, frontend.sample_rate)
    count = 1 + (samples.shape[0] - window) // hop
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop][:count]
    hann = _hann(window)
    bank = _sparse_filterbank(frontend.sample_rate, n_fft, frontend.n_mels)
    energies = np.empty((count, frontend.n_mels))
    # Blocks of frames keep the temporaries small (cache-resident, no page faults); every
    # frame is computed independently, so the block size does not change any result.
    for start in range(0, count, FRAME_BLOCK):
        spectrum = np.fft.rfft(frames[start:start + FRAME_BLOCK] * hann, n=n_fft, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        # Σ_k weight[m, k] · power[t, k] over each filter's non-zero weights in bin order:
        # fewer operations than the dense product, and no BLAS (or its thread count) involved.
        energies[start:start + FRAME_BLOCK] = np.add.reduceat(
            power[:, bank.bins] * bank.weights, bank.starts, axis=1)
    return np.log(np.maximum(energies, LOG_FLOOR))


def deltas(features: np.ndarray) -> np.ndarray:
    """Regression deltas over ±2 frames, edges replicated (DECODING.md, Deltas).

    d[t] = Σ_{n=1..2} n · (c[t+n] − c[t−n]) / (2 · Σ_{n=1..2} n²), with c[t] = c[0] for t < 0
    and c[t] = c[T−1] for t ≥ T. The time axis is 0.
    """
    padded = np.concatenate([features[:1].repeat(DELTA_WINDOW, axis=0), features,
                             features[-1:].repeat(DELTA_WINDOW, axis=0)])
    count = features.shape[0]
    total = np.zeros_like(features)
    for n in range(1, DELTA_WINDOW + 1):
        ahead = padded[DELTA_WINDOW + n:DELTA_WINDOW + n + count]
        behind = padded[DELTA_WINDOW - n:DELTA_WINDOW - n + count]
        total += n * (ahead - behind)
    return total / (2 * sum(n * n for n in range(1, DELTA_WINDOW + 1)))


def compute_features(audio: np.ndarray, frontend: Frontend) -> np.ndarray:
    """Features float32 [T, n_mels · (1 + deltas)]: [log-Mel, Δ, ΔΔ, …] (DECODING.md, Front end).

    ``audio`` is mono float samples at ``frontend.sample_rate`` (``load_audio``'s output).
    A ``kaldi-fbank`` front end takes its log-Mel block from ``kaldi_fbank``.
    Order k ≥ 1 is the delta of order k − 1; ``frontend.deltas`` orders are appended.
    """
    if frontend.kaldi_fbank is not None:
        from int4rt.frontend.kaldi_fbank import kaldi_fbank

        blocks = [kaldi_fbank(_check_audio(audio, 1, frontend.sample_rate),
                              frontend).astype(np.float64)]
    else:
        blocks = [log_mel(audio, frontend)]
    for _ in range(frontend.deltas):
        blocks.append(deltas(blocks[-1]))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def load_features(source: str | os.PathLike[str] | np.ndarray, frontend: Frontend, *,
                  source_rate: int | None = None) -> np.ndarray:
    """``compute_features`` of ``load_audio(source, ...)``, too-short audio named by its file."""
    window = frame_geometry(frontend).window
    audio = load_audio(source, frontend.sample_rate, source_rate=source_rate,
                       min_samples=window)
    return compute_features(audio, frontend)


def _check_audio(audio: np.ndarray, window: int, sample_rate: int) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"features need 1-D float samples (load_audio's output), got "
                         f"{samples.dtype} of shape {list(samples.shape)}")
    if samples.shape[0] < window:
        raise AudioError(
            f"audio too short: {samples.shape[0]} samples at {sample_rate} Hz, fewer than one "
            f"analysis window of {window} samples ({1000 * window / sample_rate:g} ms); supply "
            "a longer recording")
    if not np.all(np.isfinite(samples)):
        raise AudioError("audio contains NaN or infinite samples; repair or re-export it")
    return samples.astype(np.float64)
