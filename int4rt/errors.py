"""The exceptions int4rt raises on bad input."""


class Int4rtError(Exception):
    """Base class of every error int4rt raises on purpose."""


class ArithmeticSpecError(Int4rtError, ValueError):
    """An integer primitive got an argument outside its specification (docs/ARITHMETIC.md)."""


class FormatError(Int4rtError, ValueError):
    """A model file is malformed; the message names the offending field (docs/FORMAT.md)."""
