"""The one exception the converter raises on bad input (docs/CONVERT.md)."""

from __future__ import annotations

from int4rt.errors import Int4rtError


class ConvertError(Int4rtError):
    """A checkpoint, mapping file, calibration set or option the converter cannot use.

    The message names the offending tensor, file or option; the CLI prints it as one line
    ``int4rt: error: ...`` and exits with status 2.
    """
