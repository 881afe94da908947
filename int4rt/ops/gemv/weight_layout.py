"""Weights laid out once, at load time, in the order the tiled kernels stream them (§7.4).

The model file keeps its format (§5, FORMAT.md); in memory each layer's int8-held codes
``QLinear.weight`` [N, K] are used with every row padded with zero codes to ``Kp``, the next
multiple of 32 bytes, so each row is a whole number of 32-byte chunks (a padded copy is made
only when K is not already a multiple of 32). Activations
are padded the same way with zero unsigned codes; padded products are 0, so sums are unchanged.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np

from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv.dispatch import kernel_flush
from int4rt.ops.gemv.dot_tiles import CHUNK, flush_period


def padded_width(n_in: int) -> int:
    """K rounded up to a multiple of 32 (at least 32 so every row has one chunk)."""
    return max(CHUNK, -(-n_in // CHUNK) * CHUNK)


class StreamLayout(NamedTuple):
    """One layer's weights in kernel order, with what the kernels need per call (a named
    tuple, so Numba kernels take it as one argument).
    """

    weight: np.ndarray  # int8 [N, Kp], C-contiguous: rows padded with zero codes
    offsets: np.ndarray  # int32 [N]: (zp − qmin) · Σ_k w[n, k], the folded zero point (§7.3)
    flush: int  # chunks an int16 lane may accumulate exactly (flush_period); 0 selects the
    # portable tiles (always so when INT4RT_KERNELS=portable), VNNI_FLUSH the VNNI tiles
    # (dispatch.kernel_flush)
    n_in: int
    qmin: int
    qmax: int
    bias: np.ndarray  # int64 [N]: the layer's bias, cast once for the requantization pass
    multiplier: np.ndarray  # int64 [N]
    shift: np.ndarray  # int64 [N]


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stream_layout(layer: QLinear, fmt: ActQuant) -> StreamLayout:
    """The layout of ``layer`` fed with codes of ``fmt``, built on first use and kept."""
    per_layer = _CACHE.setdefault(layer, {})
    layout = per_layer.get(fmt)
    if layout is None:
        width = padded_width(layer.n_in)
        if width == layer.n_in and layer.weight.flags.c_contiguous:
            weight = layer.weight  # already in kernel order: no second copy in memory
        else:
            weight = np.zeros((layer.n_out, width), dtype=np.int8)
            weight[:, :layer.n_in] = layer.weight
        offsets = ((fmt.zero_point - fmt.qmin) * layer.row_sums.astype(np.int64)).astype(np.int32)
        flush = flush_period(layer.max_abs_weight, fmt.qmax - fmt.qmin)
        layout = StreamLayout(weight, offsets, kernel_flush(flush),
                              int(layer.n_in), int(fmt.qmin), int(fmt.qmax),
                              layer.bias.astype(np.int64),
                              layer.multiplier.astype(np.int64), layer.shift.astype(np.int64))
        per_layer[fmt] = layout
    return layout
