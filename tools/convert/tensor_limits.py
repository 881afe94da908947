"""Checks on a checkpoint's tensors before any of them is materialized (docs/CONVERT.md §1).

A checkpoint file is small, but what it declares can be huge: a PyTorch view with stride 0
repeats one stored element 2^40 times, an ``.npz`` member can be a compressed zip bomb. Every
tensor's name, dtype, shape and (for PyTorch) strides and storage size are checked here from
what the file declares, and the converter only then converts tensors to float64.
"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import ConvertError

MAX_TENSOR_ELEMENTS = 1 << 28  # elements of one checkpoint tensor (2 GiB as float64)
MAX_TOTAL_ELEMENTS = 1 << 29  # elements of all tensors together
MAX_TENSORS = 100_000  # tensors in one checkpoint


class TensorBudget:
    """Counts the tensors and elements of one checkpoint against the limits above."""

    def __init__(self, source: Path) -> None:
        self._source = source
        self._tensors = 0
        self._elements = 0

    def check(self, name: object, shape: tuple[int, ...], kind: str) -> None:
        """``name`` must be a string, ``kind`` (NumPy dtype kind) numeric, ``shape`` within
        the limits; raises ``ConvertError`` naming the tensor otherwise.
        """
        where = f"checkpoint {str(self._source)!r}"
        if not isinstance(name, str):
            raise ConvertError(f"{where}: a tensor name is a {type(name).__name__} ({name!r}), "
                               "not a string; save a state dict keyed by parameter names")
        if kind not in "fiu":
            raise ConvertError(f"{where}: tensor {name!r} has a non-numeric dtype; expected a "
                               "floating-point (or integer) tensor")
        count = math.prod(shape)
        if count > MAX_TENSOR_ELEMENTS:
            raise ConvertError(f"{where}: tensor {name!r} of shape {list(shape)} has {count} "
                               f"elements, more than the limit of {MAX_TENSOR_ELEMENTS}")
        self._tensors += 1
        self._elements += count
        if self._tensors > MAX_TENSORS:
            raise ConvertError(f"{where}: more than {MAX_TENSORS} tensors")
        if self._elements > MAX_TOTAL_ELEMENTS:
            raise ConvertError(f"{where}: its tensors hold more than {MAX_TOTAL_ELEMENTS} "
                               "elements together")


def check_torch_layout(source: Path, name: str, shape: tuple[int, ...],
                       strides: tuple[int, ...], offset: int, storage_elements: int) -> None:
    """A PyTorch tensor must read each stored element at most once: no stride 0 over a
    dimension longer than 1, and its elements must fit in its storage.
    """
    count = math.prod(shape)
    if count == 0:
        return
    if any(size > 1 and stride <= 0 for size, stride in zip(shape, strides, strict=True)):
        raise ConvertError(f"checkpoint {str(source)!r}: tensor {name!r} is a view with stride "
                           f"{list(strides)} that repeats its stored elements; save "
                           "tensor.contiguous() (or .clone()) instead")
    last = offset + sum((size - 1) * stride for size, stride in zip(shape, strides, strict=True))
    if count > storage_elements or last >= storage_elements:
        raise ConvertError(f"checkpoint {str(source)!r}: tensor {name!r} of shape {list(shape)} "
                           f"needs {count} elements but its storage holds {storage_elements}; "
                           "save tensor.clone() instead of a view")
