"""Reading float checkpoints: PyTorch state dicts, safetensors and NumPy ``.npz`` files.

Nothing is unpickled except by ``torch.load(..., weights_only=True)``, which only rebuilds
tensors and plain containers; a file that needs arbitrary Python objects is refused with one
:class:`ConvertError` (docs/CONVERT.md §1).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConvertError
from .tensor_limits import TensorBudget, check_torch_layout

SUFFIXES = (".pt", ".pth", ".safetensors", ".npz")
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")  # training-checkpoint wrappers


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint at ``path`` by name, as float64 arrays.

    A training checkpoint whose top level holds no tensors but one of ``state_dict``,
    ``model`` or ``model_state_dict`` is unwrapped to that entry.
    """
    source = Path(path)
    if not source.is_file():
        reason = "not a regular file" if source.exists() else "no such file"
        raise ConvertError(f"cannot read checkpoint {str(source)!r}: {reason}")
    suffix = source.suffix.lower()
    if suffix in (".pt", ".pth"):
        raw = _read_torch(source)
    elif suffix == ".safetensors":
        raw = _read_safetensors(source)
    elif suffix == ".npz":
        raw = _read_npz(source)
    else:
        raise ConvertError(f"checkpoint {str(source)!r}: unknown file type {suffix or '(none)'!r}"
                           f"; expected one of {', '.join(SUFFIXES)}")
    return {name: _as_float(source, name, value) for name, value in raw.items()}


def _as_float(source: Path, name: str, value: np.ndarray) -> np.ndarray:
    if value.dtype.kind not in "fiu":
        raise ConvertError(f"checkpoint {str(source)!r}: tensor {name!r} has dtype {value.dtype}; "
                           "expected a floating-point (or integer) tensor")
    return np.asarray(value, dtype=np.float64)


def _read_torch(source: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ConvertError(
            f"reading the PyTorch checkpoint {str(source)!r} needs torch: install the 'train' "
            "(or 'dev') extra, pip install 'int4rt[train]', or save the state dict as "
            ".safetensors or .npz") from None
    try:
        loaded = _torch_load(torch, source)
    except Exception as error:  # torch raises many types for unreadable files
        text = str(error)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if found:
            raise ConvertError(
                f"checkpoint {str(source)!r} can only be read by unpickling arbitrary Python "
                f"objects (it holds {found.group(1)}), which int4rt refuses; save "
                "model.state_dict() instead of the objects") from None
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        reason = detail.group(1) if detail else (text.splitlines() or [""])[0]
        raise ConvertError(f"cannot read checkpoint {str(source)!r} as a PyTorch state dict "
                           f"(torch.load with weights_only=True: {type(error).__name__}: "
                           f"{reason})") from None
    state = _state_dict(source, loaded, lambda v: isinstance(v, torch.Tensor))
    budget = TensorBudget(source)
    for name, tensor in state.items():  # everything checked before anything is converted
        kind = "f" if tensor.is_floating_point() else "c" if tensor.is_complex() \
            else "b" if tensor.dtype == torch.bool else "i"
        budget.check(name, tuple(tensor.shape), kind)
        check_torch_layout(source, name, tuple(tensor.shape), tuple(tensor.stride()),
                           tensor.storage_offset(),
                           tensor.untyped_storage().nbytes() // tensor.element_size())
    out = {}
    for name, tensor in state.items():
        tensor = tensor.detach()
        out[name] = (tensor.to(torch.float64) if tensor.is_floating_point() else tensor).numpy()
    return out


def _torch_load(torch: Any, source: Path) -> object:
    """``torch.load`` with ``weights_only=True``, memory-mapped when the file format allows,
    so that no storage is read before the tensors are checked.
    """
    try:
        return torch.load(source, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as error:
        if "mmap" not in str(error):
            raise
        return torch.load(source, map_location="cpu", weights_only=True)


def _state_dict(source: Path, loaded: object, is_tensor: Any) -> dict[str, Any]:
    """The name → tensor mapping inside ``loaded`` (unwrapping a training checkpoint)."""
    if not isinstance(loaded, Mapping):
        raise ConvertError(f"checkpoint {str(source)!r} holds a {type(loaded).__name__}, not a "
                           "state dict (a mapping from parameter names to tensors)")
    if not any(is_tensor(value) for value in loaded.values()):
        for key in WRAPPER_KEYS:
            if isinstance(loaded.get(key), Mapping):
                return _state_dict(source, loaded[key], is_tensor)
    for name, value in loaded.items():
        if not isinstance(name, str):
            raise ConvertError(f"checkpoint {str(source)!r}: a key is a {type(name).__name__} "
                               f"({name!r}), not a string; save a state dict keyed by "
                               "parameter names")
        if not is_tensor(value):
            raise ConvertError(f"checkpoint {str(source)!r}: entry {name!r} is a "
                               f"{type(value).__name__}, not a tensor")
    return dict(loaded)


def _read_safetensors(source: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    try:
        with safe_open(str(source), framework="numpy") as handle:
            budget = TensorBudget(source)
            for name in handle.keys():
                view = handle.get_slice(name)
                budget.check(name, tuple(view.get_shape()), _SAFETENSORS_KINDS.get(
                    view.get_dtype(), "?"))
            return {name: handle.get_tensor(name) for name in handle.keys()}
    except ConvertError:
        raise
    except Exception as error:  # SafetensorError, TypeError (bf16), OSError
        raise ConvertError(f"cannot read checkpoint {str(source)!r} as safetensors: {error} "
                           "(bfloat16 tensors: save them as float32)") from None


_SAFETENSORS_KINDS = {"F16": "f", "F32": "f", "F64": "f", "BF16": "f", "I8": "i", "I16": "i",
                      "I32": "i", "I64": "i", "U8": "u", "U16": "u", "U32": "u", "U64": "u",
                      "BOOL": "b"}


def _read_npz(source: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(source, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ConvertError(f"checkpoint {str(source)!r} is a single .npy array, not an "
                                   ".npz archive of named tensors")
            budget = TensorBudget(source)
            for name in archive.files:
                shape, dtype = _npy_header(archive, name)
                if dtype.hasobject:
                    raise ValueError("allow_pickle")  # reported below
                budget.check(name, shape, dtype.kind)
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ConvertError(f"checkpoint {str(source)!r} holds object arrays that can only be "
                               "read by unpickling, which int4rt refuses; store numeric arrays"
                               ) from None
        raise ConvertError(f"cannot read checkpoint {str(source)!r} as .npz: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise ConvertError(f"cannot read checkpoint {str(source)!r} as .npz: {error}") from None


def _npy_header(archive: np.lib.npyio.NpzFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one ``.npz`` member, from its ``.npy`` header only."""
    stored = f"{name}.npy" if f"{name}.npy" in archive.zip.namelist() else name
    with archive.zip.open(stored) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    return tuple(shape), dtype
