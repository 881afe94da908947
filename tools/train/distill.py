"""Knowledge distillation on the RNN-T lattice (docs/TRAINING.md §6, "Distillation").

A QAT student learns from the FP32 model it started from: besides the RNN-T loss, each step
adds ``weight`` × the mean, over the lattice nodes both models score, of the Kullback-Leibler
divergence from the teacher's output distribution to the student's (all 29 symbols, not the
blank / label / rest collapse of larger-vocabulary recipes: the joint already makes every one).
The student's log-probabilities are the engine's integer log-softmax (ARITHMETIC.md), whose
probabilities sum to 1 only to within its rounding, so the term can dip a little below 0 when
the two models agree; its gradient, −p_teacher per node over the node count, does not depend on
that sum.
"""

from __future__ import annotations

from pathlib import Path

import torch

from int4rt.model.config import RnntConfig
from int4rt_train.model import Transducer


def lattice_kl(teacher: torch.Tensor, student: torch.Tensor, enc_lengths: torch.Tensor,
               label_lengths: torch.Tensor) -> torch.Tensor:
    """Mean of KL(teacher ‖ student) over the valid nodes (t < T'_b, u ≤ U_b) of two
    log-probability lattices [B, T', U+1, V]; the gradient flows into ``student`` only."""
    frames, states = student.shape[1], student.shape[2]
    valid = ((torch.arange(frames)[None, :, None] < enc_lengths[:, None, None])
             & (torch.arange(states)[None, None, :] <= label_lengths[:, None, None]))
    teacher = teacher.detach()
    divergence = (teacher.exp() * (teacher - student)).sum(-1)
    return divergence[valid].mean()


def load_teacher(weights: dict[str, torch.Tensor], config: RnntConfig, source: Path) -> Transducer:
    """The FP32 ``Transducer`` of ``config`` holding ``weights`` (read from ``source``), frozen
    in eval mode (no dropout)."""
    teacher = Transducer(config)
    try:
        teacher.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise SystemExit(f"{source}: not an FP32 model of this config ({first})") from None
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
