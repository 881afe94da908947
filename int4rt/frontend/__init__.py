"""The audio front end: audio files or arrays → float features for ``RnntModel.quantize_features``.

Specified in docs/DECODING.md, "Front end".
"""

from int4rt.frontend.audio import AudioError, load_audio
from int4rt.frontend.features import (
    FrameGeometry,
    compute_features,
    deltas,
    frame_geometry,
    hz_to_mel,
    load_features,
    log_mel,
    mel_filterbank,
    mel_to_hz,
)

__all__ = [
    "AudioError",
    "FrameGeometry",
    "compute_features",
    "deltas",
    "frame_geometry",
    "hz_to_mel",
    "load_audio",
    "load_features",
    "log_mel",
    "mel_filterbank",
    "mel_to_hz",
]
