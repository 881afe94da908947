"""int4rt: integer-only reference inference engine for 4-bit LSTM RNN-T speech recognition."""

from __future__ import annotations

from typing import TYPE_CHECKING

from int4rt.errors import ArithmeticSpecError, FormatError, Int4rtError

if TYPE_CHECKING:
    from pathlib import Path

__version__ = "0.1.0"

__all__ = ["ArithmeticSpecError", "FormatError", "Int4rtError", "__version__", "load"]


def load(path: str | Path) -> object:
    """Load a model file (docs/FORMAT.md): an RNN-T or an LM; a bad file raises FormatError."""
    from int4rt.model.container import load_model

    return load_model(path)
