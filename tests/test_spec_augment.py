"""SpecAugment masking of training features (int4rt_train.spec_augment)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from int4rt_train.spec_augment import (  # noqa: E402
    MaskPolicy,
    mask_features,
    warp_features,
    warp_positions,
)

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


def test_warp_positions_scale_below_the_knee_and_keep_both_ends() -> None:
    up = warp_positions(41, 1.1)
    assert up[0] == 0 and up[40] == 40
    assert torch.allclose(up[:33], torch.arange(33, dtype=torch.float64) * 1.1)
    assert bool((up[1:] > up[:-1]).all())                     # monotone
    assert torch.allclose(warp_positions(41, 1.0), torch.arange(41, dtype=torch.float64))


def test_warp_moves_a_spectral_peak_in_every_block_and_leaves_padding() -> None:
    features = torch.zeros(1, 6, N_MELS * BLOCKS)
    for block in range(BLOCKS):
        features[0, :4, block * N_MELS + 6] = 1.0             # a peak at channel 6
    out = warp_features(features, torch.tensor([4]), N_MELS, max_warp=0.0)
    assert torch.equal(out, features)                          # factor exactly 1
    torch.manual_seed(0)
    out = warp_features(features, torch.tensor([4]), N_MELS, max_warp=0.3)
    torch.manual_seed(0)
    factor = 1.0 + 0.3 * (2 * float(torch.rand(())) - 1)
    source = warp_positions(N_MELS, factor)
    expected = (1 - (source - 6).abs()).clamp(min=0).float()   # linear interpolation of a spike
    for block in range(BLOCKS):
        assert torch.allclose(out[0, :4, block * N_MELS:(block + 1) * N_MELS],
                              expected.expand(4, -1), atol=1e-6)
    assert torch.equal(out[0, 4:], features[0, 4:])
    assert not torch.equal(out, features)
