"""Training checkpoints as safetensors only (no pickle): model, optimizer, step and RNG.

One file ``ckpt-<step>.safetensors`` holds ``model.<name>`` (the state dict, converter names
after the prefix), ``optim.<param index>.<key>`` (Adam moments and step), ``rng.torch`` (the
torch CPU generator state, uint8) and, in the string metadata, ``state`` (JSON: step, epoch,
position, schedule, NumPy generator state, …) and ``optim_groups`` (JSON param groups). Files
are written to a temporary name and renamed, so a listed file is complete.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

PATTERN = re.compile(r"^ckpt-(\d{9})\.safetensors$")


def checkpoint_path(run: Path, step: int) -> Path:
    """``<run>/ckpt-<step, 9 digits>.safetensors``."""
    return run / f"ckpt-{step:09d}.safetensors"


def newest_checkpoint(run: Path) -> Path | None:
    """The complete checkpoint with the highest step in ``run``, or None."""
    found = [path for path in run.glob("ckpt-*.safetensors") if PATTERN.match(path.name)]
    return max(found, key=lambda path: int(PATTERN.match(path.name).group(1)), default=None)


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any], keep: int = 3) -> None:
    """Write model + optimizer + RNG + ``state``; keep only the newest ``keep`` in the folder."""
    tensors = {f"model.{name}": value.detach().contiguous()
               for name, value in model.state_dict().items()}
    optim = optimizer.state_dict()
    for index, entries in optim["state"].items():
        for key, value in entries.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    metadata = {"state": json.dumps(state), "optim_groups": json.dumps(optim["param_groups"])}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    older = sorted((p for p in path.parent.glob("ckpt-*.safetensors") if PATTERN.match(p.name)),
                   key=lambda p: p.name)
    for stale in older[:-keep]:
        stale.unlink()


def load_checkpoint(path: Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Restore model (and optimizer, RNG) from ``path``; return the saved ``state``."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    model.load_state_dict({key[len("model."):]: value for key, value in tensors.items()
                           if key.startswith("model.")})
    if optimizer is not None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state,
                                   "param_groups": json.loads(metadata["optim_groups"])})
        torch.set_rng_state(tensors["rng.torch"])
    return json.loads(metadata["state"])


def model_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The model's state dict of a checkpoint (converter names), without optimizer or RNG; of a
    plain model file (no ``model.`` names: ``milestone --merge`` output, a QAT export), every
    tensor."""
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
        if not any(key.startswith("model.") for key in keys):
            return {key: handle.get_tensor(key) for key in keys}
        return {key[len("model."):]: handle.get_tensor(key) for key in keys
                if key.startswith("model.")}
