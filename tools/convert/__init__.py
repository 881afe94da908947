"""int4rt's converter: trained float (or QAT) checkpoints → int4rt model files (docs/CONVERT.md).

Installed as the module ``int4rt_convert`` (source in ``tools/convert``); ``int4rt convert
CHECKPOINT --config CONFIG -o MODEL`` runs :func:`convert`.
"""

from .build import QuantOptions
from .errors import ConvertError
from .options import ConvertOptions
from .pipeline import ConvertResult, convert

__all__ = ["ConvertError", "ConvertOptions", "ConvertResult", "QuantOptions", "convert"]
