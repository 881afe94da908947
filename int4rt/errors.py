"""The exceptions int4rt raises on bad input."""


class Int4rtError(Exception):
    """Base class of every error int4rt raises on purpose."""


class ArithmeticSpecError(Int4rtError, ValueError):
    """An integer primitive got an argument outside its specification (docs/ARITHMETIC.md)."""
