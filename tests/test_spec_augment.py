"""SpecAugment masking of training features (int4rt_train.spec_augment)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from int4rt_train.spec_augment import MaskPolicy, mask_features  # noqa: E402

N_MELS, BLOCKS = 10, 3


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    features = torch.randn(3, 50, N_MELS * BLOCKS) + 5.0
    features[1, 30:] = 0.0                         # padding after a 30-frame utterance
    return features, torch.tensor([50, 30, 50]), torch.full((N_MELS * BLOCKS,), -7.0)


def test_no_masks_leave_the_features_untouched() -> None:
    features, lengths, fill = _batch()
    out = mask_features(features, lengths, fill, N_MELS, MaskPolicy(0, time_masks=0))
    assert torch.equal(out, features)


def test_frequency_masks_blank_the_same_channels_of_every_block() -> None:
    features, lengths, fill = _batch()
    torch.manual_seed(3)
    out = mask_features(features, lengths, fill, N_MELS, MaskPolicy(2, 4, time_masks=0))
    masked_any = False
    for row in range(3):
        length = int(lengths[row])
        hit = (out[row, :length] == -7.0).all(dim=0)          # whole-column masks
        assert torch.equal((out[row, :length] == -7.0).any(dim=0), hit)
        blocks = hit.reshape(BLOCKS, N_MELS)
        assert torch.equal(blocks[0], blocks[1]) and torch.equal(blocks[0], blocks[2])
        assert int(blocks[0].sum()) <= 2 * 4
        kept = ~hit
        assert torch.equal(out[row, :length][:, kept], features[row, :length][:, kept])
        assert torch.equal(out[row, length:], features[row, length:])  # padding untouched
        masked_any |= bool(hit.any())
    assert masked_any


def test_time_masks_blank_whole_frames_within_the_length_and_width() -> None:
    features, lengths, fill = _batch()
    torch.manual_seed(5)
    policy = MaskPolicy(0, time_masks=2, time_share=0.2, time_width=4)
    out = mask_features(features, lengths, fill, N_MELS, policy)
    for row in range(3):
        length = int(lengths[row])
        frames = (out[row] == -7.0).all(dim=1)
        assert torch.equal((out[row] == -7.0).any(dim=1), frames)
        assert not frames[length:].any()
        assert int(frames.sum()) <= 2 * 4
        assert torch.equal(out[row, ~frames], features[row, ~frames])
    assert (out == -7.0).any()
