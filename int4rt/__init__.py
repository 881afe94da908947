"""int4rt: integer-only reference inference engine for 4-bit LSTM RNN-T speech recognition."""

from int4rt.errors import ArithmeticSpecError, Int4rtError

__version__ = "0.1.0"

__all__ = ["ArithmeticSpecError", "Int4rtError", "__version__"]
