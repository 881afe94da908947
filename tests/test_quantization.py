"""The shared float-to-integer rules (int4rt.quantization), on hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from int4rt.quantization import (
    format_covering,
    hidden_requant,
    max_scales,
    quantize_weight_codes,
    requant_params,
    weight_qmax,
)

ROOT = Path(__file__).parents[1]


def test_weight_codes_round_half_up_and_clamp():
    assert (weight_qmax(4), weight_qmax(8)) == (7, 127)
    w = np.array([[0.7, -0.05, 0.049, -0.75, 1.0]])
    scales = max_scales(w, 4)
    assert scales.dtype == np.float32 and scales[0] == np.float32(1.0 / 7)
    # 0.7·7 = 4.9 → 5; −0.05·7 = −0.35 → 0; 0.343 → 0; −5.25 → −5; 7 → 7
    assert quantize_weight_codes(w, scales, 4).tolist() == [[5, 0, 0, -5, 7]]
    # ×10: 49 → 7, −3.5 → floor(−3.0) = −3 (half up), 3.43 → 3, −52.5 → −7, 70 → 7
    assert quantize_weight_codes(w * 10, scales, 4).tolist() == [[7, -3, 3, -7, 7]]
    assert max_scales(np.zeros((1, 3)), 8).tolist() == [1.0]


def test_activation_formats_cover_their_range():
    symmetric = format_covering(4, True, -1.0, 1.0)
    assert (symmetric.zero_point, symmetric.scale) == (0, np.float32(1 / 7))
    unsigned = format_covering(4, False, -1.0, 2.0)  # 15 levels of 0.2, zero at code 5
    assert (unsigned.zero_point, unsigned.scale) == (5, np.float32(0.2))


def test_requant_params_and_hidden_requant_follow_section_3():
    # 0.5 · 0.25 / 2^-12 = 512 = 2^9: multiplier 2^30, shift 10
    multiplier, shift = requant_params(0.5, np.array([0.25], np.float32), 2.0**-12)
    assert (multiplier.tolist(), shift.tolist()) == ([1 << 30], [10])
    # 2^-30 / 2^-3 = 2^-27: multiplier 2^30, shift −26
    assert hidden_requant(format_covering(8, False, 0.0, 255 / 8)) == (1 << 30, -26)


def test_the_converter_does_not_import_test_helpers():
    for path in (ROOT / "tools" / "convert").glob("*.py"):
        assert "random_model" not in path.read_text(), path.name
