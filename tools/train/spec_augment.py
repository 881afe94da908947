"""SpecAugment-style masking of training features (docs/TRAINING.md §3).

Frequency masks blank a band of Mel channels — the same channels of the static, Δ and ΔΔ
blocks — and time masks blank a run of frames. A masked value is set to the CMVN mean, so it
reads as zero after normalization. Draws come from torch's global generator, whose state the
training checkpoint saves, so a resumed run masks exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskPolicy:
    """How many masks of which widths; zero masks leave the features untouched."""

    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_share: float = 0.05
    time_width: int = 40


def mask_features(features: torch.Tensor, lengths: torch.Tensor, fill: torch.Tensor,
                  n_mels: int, policy: MaskPolicy) -> torch.Tensor:
    """A masked copy of padded features [B, T, n_mels × blocks].

    Per utterance: ``freq_masks`` bands of 0..``freq_width`` Mel channels and ``time_masks``
    runs of 0..min(``time_width``, ``time_share`` × length) frames, each at a uniform start.
    """
    out = features.clone()
    batch, _, width = out.shape
    blocks = width // n_mels
    for row in range(batch):
        length = int(lengths[row])
        for _ in range(policy.freq_masks):
            size = int(torch.randint(0, policy.freq_width + 1, ()))
            start = int(torch.randint(0, n_mels - size + 1, ()))
            for block in range(blocks):
                band = slice(block * n_mels + start, block * n_mels + start + size)
                out[row, :length, band] = fill[band]
        longest = min(policy.time_width, int(policy.time_share * length))
        for _ in range(policy.time_masks):
            size = int(torch.randint(0, longest + 1, ()))
            start = int(torch.randint(0, length - size + 1, ()))
            out[row, start:start + size] = fill
    return out


def warp_positions(n_mels: int, factor: float, knee: float = 0.8) -> torch.Tensor:
    """Source channel (fractional) of each output Mel channel for a warp by ``factor``.

    Piecewise linear, as vocal tract length perturbation (Jaitly & Hinton, 2013) warps
    frequency: channel ``k`` reads channel ``k × factor`` up to the knee at ``knee × (n − 1)``,
    then a straight line to the top channel, which maps to itself. A factor above 1 moves
    spectral peaks down (a longer vocal tract), below 1 up.
    """
    top = n_mels - 1
    bend = knee * top
    channels = torch.arange(n_mels, dtype=torch.float64)
    upper = bend * factor + (channels - bend) * (top - bend * factor) / (top - bend)
    return torch.where(channels <= bend, channels * factor, upper).clamp(0, top)


def warp_features(features: torch.Tensor, lengths: torch.Tensor, n_mels: int,
                  max_warp: float) -> torch.Tensor:
    """A copy of padded features [B, T, n_mels × blocks], each utterance's Mel axis warped.

    Per utterance one factor, uniform in 1 ± ``max_warp`` (torch's generator), and the same
    ``warp_positions`` map for the static, Δ and ΔΔ blocks (Δ is linear across channels, so the
    Δ of warped features is the warped Δ); values between channels by linear interpolation.
    Padding frames stay as they are.
    """
    out = features.clone()
    batch, _, width = out.shape
    for row in range(batch):
        factor = 1.0 + max_warp * (2 * float(torch.rand(())) - 1)
        source = warp_positions(n_mels, factor)
        low = source.floor().long().clamp(max=n_mels - 2)
        frac = (source - low).to(features.dtype)
        length = int(lengths[row])
        for block in range(width // n_mels):
            values = features[row, :length, block * n_mels:(block + 1) * n_mels]
            out[row, :length, block * n_mels:(block + 1) * n_mels] = \
                values[:, low] * (1 - frac) + values[:, low + 1] * frac
    return out
