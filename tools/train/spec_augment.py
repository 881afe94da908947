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
