"""int4rt: integer-only reference inference engine for 4-bit LSTM RNN-T speech recognition."""

from __future__ import annotations

from typing import TYPE_CHECKING

from int4rt.errors import ArithmeticSpecError, FormatError, Int4rtError
from int4rt.numba_cache import use_versioned_cache

use_versioned_cache()  # before any kernel is defined: a changed kernel source never reuses a cache

if TYPE_CHECKING:
    from pathlib import Path

__version__ = "0.1.0"

__all__ = ["ArithmeticSpecError", "FormatError", "Int4rtError", "__version__", "load"]


def load(path: str | Path | None = None) -> object:
    """Load a model file (docs/FORMAT.md); a bad file raises :class:`FormatError`.

    An RNN-T file gives a :class:`int4rt.recognizer.Recognizer` (the model with ``encode``,
    ``lattice``, ... plus ``transcribe``); an LM file gives an :class:`int4rt.model.lm.LmModel`.
    Without a path: the default model shipped with int4rt, ``Recognizer.default()``.
    """
    from int4rt.model.container import load_model
    from int4rt.model.rnnt import RnntModel
    from int4rt.recognizer import Recognizer

    if path is None:
        return Recognizer.default()
    model = load_model(path)
    if isinstance(model, RnntModel):
        return Recognizer(model)
    return model
