"""``scipy.signal.resample_poly`` of a signal that arrives in blocks, block by block, with
the same numbers (DECODING.md, Reading audio step 4, and "Limits").

``resample_poly(x, up, down)`` is the FIR filter ``h`` (designed as there, times ``up``,
zero-padded in front) applied by ``upfirdn`` to the zero-stuffed signal, with the first
``n_pre_remove`` outputs dropped. Output m only depends on the inputs under the filter, and
``upfirdn`` adds their products in the order of the input index; so running ``upfirdn`` on
a slice of the input that starts at a multiple of ``down`` and holds every input under the
filter for the outputs wanted gives exactly those outputs. Only such a slice is ever held.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

OUTPUT_BLOCK = 1 << 16  # resampled samples computed at a time


class TruncatedInputError(Exception):
    """The input ended before the sample count it declared."""


class SampleWindow:
    """The samples of a signal arriving in blocks, from a start index that only moves on."""

    def __init__(self, blocks: Iterator[np.ndarray], dtype: type) -> None:
        self._blocks = blocks
        self._pending = np.empty(0, dtype)  # samples from index `_first` on
        self._first = 0

    def span(self, begin: int, end: int) -> np.ndarray:
        """Samples [begin, end); those before ``begin`` are dropped (``begin`` never goes
        back); ``TruncatedInputError`` if the blocks end first.
        """
        parts = [self._pending[begin - self._first:]]
        have = self._first + self._pending.shape[0]
        while have < end:
            block = next(self._blocks, None)
            if block is None:
                raise TruncatedInputError
            parts.append(block)
            have += block.shape[0]
        self._pending, self._first = np.concatenate(parts), begin
        return self._pending[:end - begin]


@lru_cache(maxsize=8)
def _filter(up: int, down: int) -> tuple[np.ndarray, int]:
    """``resample_poly``'s padded filter and the number of leading outputs it drops."""
    from scipy.signal import firwin  # imported here: scipy.signal takes seconds to import

    max_rate = max(up, down)
    half_len = 10 * max_rate
    taps = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    pre_pad = down - half_len % down
    padded = np.concatenate([np.zeros(pre_pad), taps])
    padded.flags.writeable = False
    return padded, (half_len + pre_pad) // down


def resampled_blocks(blocks: Iterator[np.ndarray], count: int, up: int,
                     down: int) -> Iterator[np.ndarray]:
    """float64 blocks of ``resample_poly(x, up, down)``, ``x`` being the ``count`` float64
    samples that ``blocks`` deliver (``up`` and ``down`` coprime); ``TruncatedInputError`` if
    they deliver fewer.
    """
    from scipy.signal import upfirdn

    taps, removed = _filter(up, down)
    total = -(-count * up // down)
    samples = SampleWindow(blocks, np.float64)
    for start in range(0, total, OUTPUT_BLOCK):
        stop = min(start + OUTPUT_BLOCK, total)
        k0, k1 = start + removed, stop + removed  # upfirdn output indices
        lowest = max(0, -(-(k0 * down - taps.shape[0] + 1) // up))
        begin = lowest // down * down  # a multiple of down keeps the output phase
        end = min(count, (k1 - 1) * down // up + 1)
        filtered = upfirdn(taps, samples.span(begin, end), up, down)
        offset = begin * up // down
        piece = filtered[k0 - offset:k1 - offset]
        if piece.shape[0] < stop - start:  # past the filtered signal: zeros, as upfirdn pads
            piece = np.concatenate([piece, np.zeros(stop - start - piece.shape[0])])
        yield piece
