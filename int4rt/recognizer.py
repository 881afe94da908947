"""``int4rt.load(path)`` for an RNN-T file: the model with its front end and search.

``Recognizer.default()`` (and ``int4rt.load()`` without a path) is the model shipped in the
package (``int4rt.bundle``), with the bundle's recommended decoding settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from int4rt.bundle import load_bundle, merge_settings
from int4rt.decode import DecodeOptions, DecodeResult, decode
from int4rt.decode.scoring import Scoring
from int4rt.errors import Int4rtError
from int4rt.frontend import compute_features, frame_geometry, load_audio
from int4rt.model.container import load_model
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel

LmSource = str | Path | LmModel | None


class Recognizer:
    """An :class:`RnntModel` plus the front end and ``transcribe``.

    Every attribute and method of the model (``encode``, ``lattice``, ``vocab``, ...) is
    reachable on the recognizer; ``model`` is the model itself. LMs given by path are loaded
    once and kept. ``recommended`` holds decoding settings (``transcribe`` keywords) used where
    a call gives none (``with_recommended``); empty unless the recognizer is ``default()``.
    """

    def __init__(self, model: RnntModel, recommended: dict[str, object] | None = None) -> None:
        self.model = model
        self.recommended = dict(recommended or {})
        self._lms: dict[str, LmModel] = {}

    @classmethod
    def default(cls) -> Recognizer:
        """The default model shipped with int4rt and its recommended decoding (beam search,
        LM fusion weights) from ``bundle.json``; a missing or altered bundle raises
        :class:`Int4rtError`.
        """
        bundle = load_bundle()
        model = load_model(bundle.model_path)
        if not isinstance(model, RnntModel):
            raise Int4rtError(f"{bundle.model_path} is not an RNN-T model file; reinstall int4rt")
        return cls(model, bundle.decoding)

    def with_recommended(self, given: dict[str, object]) -> dict[str, object]:
        """``given`` settings over ``recommended`` ones (``int4rt.bundle.merge_settings``: an
        LM and its weight go together)."""
        return merge_settings(self.recommended, given)

    def __getattr__(self, name: str) -> object:
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)

    def samples(self, audio: str | Path | np.ndarray, sample_rate: int | None = None
                ) -> np.ndarray:
        """Mono float32 samples at the model's rate, of a file or an array.

        DECODING.md, "Front end"; audio shorter than one analysis window is an error.
        """
        frontend = self.model.frontend
        shortest = frame_geometry(frontend).window
        if isinstance(audio, np.ndarray):
            if sample_rate is None:
                raise Int4rtError("audio given as an array of samples needs sample_rate=")
            return load_audio(audio, frontend.sample_rate, source_rate=sample_rate,
                              min_samples=shortest)
        return load_audio(audio, frontend.sample_rate, min_samples=shortest)

    def features(self, audio: str | Path | np.ndarray, sample_rate: int | None = None
                 ) -> np.ndarray:
        """Float features [T, F] of a file or of samples (DECODING.md, "Front end")."""
        return compute_features(self.samples(audio, sample_rate), self.model.frontend)

    def language_model(self, lm: LmSource) -> LmModel | None:
        """``lm`` itself, the LM file at a path (loaded once), or None."""
        if lm is None or isinstance(lm, LmModel):
            return lm
        key = str(lm)
        if key not in self._lms:
            loaded = load_model(key)
            if not isinstance(loaded, LmModel):
                raise Int4rtError(f"{key} is an RNN-T model file; an LM file is needed here")
            self._lms[key] = loaded
        return self._lms[key]

    def prepare(self, *, lm: LmSource = None, source_lm: LmSource = None, **options: object
                ) -> tuple[DecodeOptions, LmModel | None, LmModel | None]:
        """Validated options and loaded LMs; raises :class:`Int4rtError` naming a bad one."""
        try:
            decode_options = DecodeOptions(**options)
        except TypeError as error:
            raise Int4rtError(f"unknown decoding option: {error}") from None
        decode_options.validate()
        lm_model, source_model = self.language_model(lm), self.language_model(source_lm)
        Scoring.build(self.model, decode_options, lm_model, source_model)
        return decode_options, lm_model, source_model

    def decode_features(self, features: np.ndarray, *, backend: str = "numba",
                        **options: object) -> DecodeResult:
        """Search over float features [T, F]; ``options`` are ``lm``, ``source_lm`` (a path,
        an :class:`LmModel` or None) and :class:`DecodeOptions` fields, over ``recommended``.
        """
        decode_options, lm_model, source_model = self.prepare(**self.with_recommended(options))
        return decode(self.model, features, decode_options, lm=lm_model,
                      source_lm=source_model, backend=backend)

    def transcribe(self, audio: str | Path | np.ndarray, *, sample_rate: int | None = None,
                   backend: str = "numba", **options: object) -> DecodeResult:
        """Decode a file or an array of samples: text, tokens, frame indices, score, n-best.

        ``options`` are ``lm`` and ``source_lm`` (LM file paths or models) and the fields of
        :class:`DecodeOptions` (method, beam, lm_weight, source_lm_weight, length_reward,
        blank_penalty, nbest, max_symbols_per_frame); settings not given come from
        ``recommended`` (``with_recommended``).
        """
        return self.decode_features(self.features(audio, sample_rate), backend=backend,
                                    **options)
