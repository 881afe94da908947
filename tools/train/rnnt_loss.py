"""RNN-T loss (Graves 2012), vectorized over the batch along anti-diagonals of the lattice.

α(t, u) = logaddexp(α(t−1, u) + blank(t−1, u), α(t, u−1) + y(t, u−1)), α(0, 0) = 0, and the
loss is −(α(T−1, U) + blank(T−1, U)). All cells with t + u = n depend only on cells with
t + u = n − 1, so the DP runs T + U − 1 steps, each one vectorized operation over the batch
and the label axis. The blank and label log-probabilities are gathered first ([B, T, U+1]
each) and re-indexed by diagonal, so the DP never touches the vocabulary axis. Gradients come
from autograd through the DP.
"""

from __future__ import annotations

import torch

NEG = -1.0e30  # "log 0": finite, so logaddexp never meets −inf − (−inf)


def gather_emissions(log_probs: torch.Tensor, labels: torch.Tensor,
                     blank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank and next-label log-probabilities, each [B, T, U+1], of ``log_probs`` [B, T, U+1, V].

    ``labels`` [B, U] (padding any id); the label entry at u = U is unused and set to NEG.
    """
    batch, frames, states, _ = log_probs.shape
    blank_lp = log_probs[..., blank]
    index = torch.cat([labels, labels.new_zeros(batch, 1)], dim=1)
    index = index[:, None, :, None].expand(batch, frames, states, 1)
    label_lp = log_probs.gather(3, index).squeeze(3)
    label_lp = torch.cat([label_lp[..., :-1], label_lp.new_full((batch, frames, 1), NEG)], 2)
    return blank_lp, label_lp


def _diagonals(values: torch.Tensor) -> torch.Tensor:
    """D[:, n, u] = values[:, n − u, u] for n = 0 … T+U−1 (index clamped; callers mask)."""
    _, frames, states = values.shape
    n = torch.arange(frames + states - 1, device=values.device)[:, None]
    u = torch.arange(states, device=values.device)[None, :]
    t = (n - u).clamp(0, frames - 1)
    return values[:, t, u.expand_as(t)]


def rnnt_loss(log_probs: torch.Tensor, labels: torch.Tensor, frame_lengths: torch.Tensor,
              label_lengths: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """Per-utterance negative log-likelihood [B] of ``labels`` given ``log_probs`` [B, T, U+1, V].

    ``frame_lengths`` [B] (1 ≤ T_b ≤ T) and ``label_lengths`` [B] (0 ≤ U_b ≤ U) select each
    utterance's sub-lattice; padded cells never reach a valid cell, so they need no mask.
    """
    blank_lp, label_lp = gather_emissions(log_probs, labels, blank)
    batch, frames, states = blank_lp.shape
    blank_d, label_d = _diagonals(blank_lp), _diagonals(label_lp)
    u_index = torch.arange(states, device=log_probs.device)
    alpha = torch.full((batch, states), NEG, dtype=log_probs.dtype, device=log_probs.device)
    alpha = torch.where(u_index == 0, torch.zeros_like(alpha), alpha)
    history = [alpha]
    pad = alpha.new_full((batch, 1), NEG)
    for n in range(1, frames + states - 1):
        from_blank = alpha + blank_d[:, n - 1]
        from_label = torch.cat([pad, (alpha + label_d[:, n - 1])[:, :-1]], dim=1)
        alpha = torch.logaddexp(from_blank, from_label)
        t = n - u_index
        alpha = torch.where((t >= 0) & (t < frames), alpha, alpha.new_full((), NEG))
        history.append(alpha)
    alphas = torch.stack(history, dim=1)  # [B, T+U, U+1] by diagonal
    rows = torch.arange(batch, device=log_probs.device)
    last_t = frame_lengths - 1
    final = alphas[rows, last_t + label_lengths, label_lengths]
    return -(final + blank_lp[rows, last_t, label_lengths])
