"""A slow, obviously-correct Kaldi fbank in NumPy float64, written from Kaldi's documented
algorithm (feature-window.cc, mel-computations.cc, feature-fbank.cc), sharing no code with
int4rt or kaldi-native-fbank: the independent twin of the ``kaldi-fbank`` front end.
"""

from __future__ import annotations

import math

import numpy as np

FLT_EPSILON = float(np.finfo(np.float32).eps)


def _mel(hz: float) -> float:
    return 1127.0 * math.log(1.0 + hz / 700.0)


def _frame_samples(samples: np.ndarray, index: int, shift: int, length: int,
                   snip_edges: bool) -> np.ndarray:
    """Frame ``index``; without snip_edges centred on index·shift + shift/2, edges reflected."""
    n = samples.shape[0]
    first = index * shift if snip_edges else index * shift + shift // 2 - length // 2
    out = np.empty(length)
    for k in range(length):
        s = first + k
        while s < 0 or s >= n:
            s = -s - 1 if s < 0 else 2 * n - 1 - s
        out[k] = samples[s]
    return out


def kaldi_fbank(samples: np.ndarray, rate: int, *, num_bins: int, frame_length_ms: float,
                frame_shift_ms: float, low_freq: float, high_freq: float,
                snip_edges: bool) -> np.ndarray:
    """log Mel energies [T, num_bins]: no dither, DC removed, pre-emphasis 0.97, Povey window."""
    x = np.asarray(samples, dtype=np.float64)
    length = int(rate * 0.001 * frame_length_ms)
    shift = int(rate * 0.001 * frame_shift_ms)
    n_fft = 1 << (length - 1).bit_length()
    if snip_edges:
        frames = 1 + (x.shape[0] - length) // shift
    else:
        frames = (x.shape[0] + shift // 2) // shift
    nyquist = rate / 2
    high = high_freq if high_freq > 0 else nyquist + high_freq
    low_mel, high_mel = _mel(low_freq), _mel(high)
    delta = (high_mel - low_mel) / (num_bins + 1)
    bank = np.zeros((num_bins, n_fft // 2 + 1))
    for b in range(num_bins):
        left, center, right = (low_mel + (b + i) * delta for i in range(3))
        for i in range(n_fft // 2):  # Kaldi leaves out the Nyquist bin
            mel = _mel(i * rate / n_fft)
            if left < mel < right:
                bank[b, i] = ((mel - left) / (center - left) if mel <= center
                              else (right - mel) / (right - center))
    window = (0.5 - 0.5 * np.cos(2 * math.pi * np.arange(length) / (length - 1))) ** 0.85
    out = np.empty((frames, num_bins))
    for t in range(frames):
        frame = _frame_samples(x, t, shift, length, snip_edges)
        frame -= frame.mean()
        frame[1:] -= 0.97 * frame[:-1].copy()
        frame[0] -= 0.97 * frame[0]
        spectrum = np.fft.rfft(frame * window, n=n_fft)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        out[t] = np.log(np.maximum(bank @ power, FLT_EPSILON))
    return out
