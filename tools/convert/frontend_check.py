"""A warning when a mapping file names an icefall/k2 checkpoint but the front end is log-Mel.

CONVERT.md §2: icefall, k2 and sherpa transducers are trained on Kaldi-compatible fbank
features (lhotse); fed int4rt's HTK-style log-Mel features they would silently mis-recognize.
"""

from __future__ import annotations

import re
import warnings

from int4rt.model.config import LmConfig, ModelConfig
from int4rt.options import KALDI_FBANK

from .mapping import Mapping

_NAMES = re.compile(r"\b(icefall|k2|sherpa|lhotse)\b", re.IGNORECASE)
_TENSOR_MARKERS = ("simple_am_proj", "simple_lm_proj", "joiner.")


class FrontendMismatchWarning(UserWarning):
    """The checkpoint looks like icefall/k2 but the config's front end is not Kaldi fbank."""


def names_icefall(mapping: Mapping) -> bool:
    """Whether the mapping's description or tensor names point to an icefall/k2 checkpoint."""
    if _NAMES.search(mapping.description):
        return True
    patterns = [rule.source for rule in mapping.rules] + list(mapping.ignore)
    return any(marker in pattern for pattern in patterns for marker in _TENSOR_MARKERS)


def warn_frontend_mismatch(mapping: Mapping, config: ModelConfig) -> None:
    """Warn (``FrontendMismatchWarning``) for an icefall/k2 mapping with a non-fbank config."""
    if isinstance(config, LmConfig) or config.frontend.kind == KALDI_FBANK:
        return
    if names_icefall(mapping):
        warnings.warn(
            f"the mapping file names an icefall/k2 checkpoint, but the config's front end is "
            f"{config.frontend.kind!r}; such models are trained on Kaldi fbank features: set "
            f'"kind": "{KALDI_FBANK}" in the config\'s "frontend" (docs/CONVERT.md)',
            FrontendMismatchWarning, stacklevel=3)
