"""The training RNN-T loss against a brute-force sum over every alignment path."""

from __future__ import annotations

import itertools
import math

import pytest

torch = pytest.importorskip("torch")

from int4rt_train.rnnt_loss import rnnt_loss  # noqa: E402


def brute_force_nll(log_probs: torch.Tensor, labels: list[int], frames: int,
                    blank: int) -> torch.Tensor:
    """−log Σ over all paths: every order of T blanks and U labels that ends in a blank."""
    count = len(labels)
    terms = []
    for label_slots in itertools.combinations(range(frames + count - 1), count):
        t = u = 0
        total = log_probs.new_zeros(())
        for step in range(frames + count):
            if step in label_slots:
                total = total + log_probs[t, u, labels[u]]
                u += 1
            else:
                total = total + log_probs[t, u, blank]
                t += 1
        assert (t, u) == (frames, count)
        terms.append(total)
    return -torch.logsumexp(torch.stack(terms), dim=0)


@pytest.mark.parametrize("seed", range(4))
def test_loss_and_gradient_match_path_enumeration(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    batch, frames, count, vocab, blank = 3, 5, 3, 5, seed % 2
    logits = torch.randn(batch, frames, count + 1, vocab, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, vocab, (batch, count), generator=gen)
    labels = torch.where(labels == blank, (labels + 1) % vocab, labels)
    frame_lengths = torch.tensor([frames, 3, 1])
    label_lengths = torch.tensor([count, 2, 1])

    fast_in = logits.clone().requires_grad_(True)
    fast = rnnt_loss(fast_in.log_softmax(-1), labels, frame_lengths, label_lengths, blank)
    fast.sum().backward()

    slow_in = logits.clone().requires_grad_(True)
    slow_lp = slow_in.log_softmax(-1)
    slow = torch.stack([
        brute_force_nll(slow_lp[b], labels[b, :label_lengths[b]].tolist(),
                        int(frame_lengths[b]), blank) for b in range(batch)])
    slow.sum().backward()

    assert torch.allclose(fast, slow, rtol=0, atol=1e-9)
    assert torch.allclose(fast_in.grad, slow_in.grad, rtol=0, atol=1e-9)


def test_single_path_by_hand() -> None:
    # T = 1, U = 1: the only path is label then blank at frame 0.
    probs = torch.tensor([[[[0.5, 0.3, 0.2], [0.6, 0.1, 0.3]]]], dtype=torch.float64)
    loss = rnnt_loss(probs.log(), torch.tensor([[2]]), torch.tensor([1]), torch.tensor([1]))
    assert loss.item() == pytest.approx(-math.log(0.2 * 0.6), abs=1e-12)
