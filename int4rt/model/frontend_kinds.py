"""Front-end kinds: today's HTK-style ``log-mel`` and Kaldi-compatible ``kaldi-fbank``.

A model's front end (FORMAT.md §2.6, config ``frontend``) names its kind; ``log-mel`` is the
default, and a file or config without ``kind`` is ``log-mel``, read exactly as before.
``kaldi-fbank`` adds the options below; the rest of Kaldi's fbank options are fixed
(DECODING.md, "Kaldi fbank front end").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from int4rt.options import FRONTEND_KINDS, KALDI_FBANK, LOG_MEL

if TYPE_CHECKING:
    from int4rt.model.config import JsonObject


@dataclass(frozen=True)
class KaldiFbankOptions:
    """The Kaldi fbank options a model keeps (lhotse/icefall defaults).

    ``high_freq_hz`` ≤ 0 is an offset from the Nyquist frequency, as in Kaldi.
    """

    low_freq_hz: float = 20.0
    high_freq_hz: float = -400.0
    snip_edges: bool = False

    def to_json(self) -> dict:
        """The ``kaldi_fbank`` object of a config or model file."""
        return {"low_freq_hz": float(self.low_freq_hz), "high_freq_hz": float(self.high_freq_hz),
                "snip_edges": bool(self.snip_edges)}


def read_frontend_kind(fe: JsonObject, sample_rate: int, n_mels: int,
                       defaults: bool) -> KaldiFbankOptions | None:
    """``kind`` and, for ``kaldi-fbank``, its options; None for ``log-mel``.

    ``defaults``: missing options take the lhotse/icefall defaults (configs); a model file
    must state every option.
    """
    kind = fe.choice("kind", FRONTEND_KINDS) if fe.has("kind") else LOG_MEL
    if kind == LOG_MEL:
        return None
    if defaults and not fe.has("kaldi_fbank"):
        section = None
    else:
        section = fe.object("kaldi_fbank")
    base = KaldiFbankOptions()
    if section is None:
        options = base
    else:
        options = KaldiFbankOptions(
            _real(section, "low_freq_hz", base.low_freq_hz if defaults else ...),
            _real(section, "high_freq_hz", base.high_freq_hz if defaults else ...),
            _flag(section, "snip_edges", base.snip_edges if defaults else ...))
        section.done()
    problem = kaldi_fbank_problem(options, sample_rate, n_mels)
    if problem is not None:
        fe.fail(*problem)
    return options


def kaldi_fbank_problem(options: KaldiFbankOptions, sample_rate: int,
                        n_mels: int) -> tuple[str, str] | None:
    """(key, message) of what Kaldi would refuse in these options, or None when they work.

    Used when reading configs and model files and by ``int4rt.model.validation``.
    """
    nyquist = sample_rate / 2
    high = options.high_freq_hz if options.high_freq_hz > 0 else nyquist + options.high_freq_hz
    if not 0 <= options.low_freq_hz < high <= nyquist:
        return ("kaldi_fbank", f"need 0 <= low_freq_hz < high frequency <= {nyquist:g} Hz "
                               f"(Nyquist), got low {options.low_freq_hz:g} Hz and high "
                               f"{high:g} Hz (high_freq_hz <= 0 counts from Nyquist)")
    if n_mels < 3:
        return ("n_mels", "kaldi-fbank needs at least 3 mel bins")
    return None


def frontend_kind_json(options: KaldiFbankOptions | None) -> dict:
    """The keys a model file's ``frontend`` gets: none for ``log-mel`` (files stay as before)."""
    if options is None:
        return {}
    return {"kind": KALDI_FBANK, "kaldi_fbank": options.to_json()}


def _real(section: JsonObject, key: str, default: object) -> float:
    value = section.raw(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        section.fail(key, f"expected a finite number of Hz, got {value!r}")
    return float(value)


def _flag(section: JsonObject, key: str, default: object) -> bool:
    value = section.raw(key, default)
    if not isinstance(value, bool):
        section.fail(key, f"expected true or false, got {value!r}")
    return value
