"""Kaldi-compatible log Mel filterbank features through ``kaldi-native-fbank``.

DECODING.md, "Kaldi fbank front end": the model's ``kaldi_fbank`` options plus fixed ones
(no dither, pre-emphasis 0.97, DC offset removed, Povey window, FFT of the next power of two,
power spectrum, natural log floored at float32 epsilon, no energy), on samples in [-1, 1] as
lhotse, icefall and sherpa-onnx feed it. float32 [T, n_mels] out; deltas, CMVN and the §8.6
input quantizer follow as for the log-Mel front end.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from int4rt.errors import Int4rtError
from int4rt.model.rnnt import Frontend

DITHER = 0.0
PREEMPHASIS = 0.97
WINDOW = "povey"


def fbank_options(frontend: Frontend) -> object:
    """The ``kaldi_native_fbank.FbankOptions`` of a ``kaldi-fbank`` front end."""
    knf = _library()
    options = frontend.kaldi_fbank
    if options is None:
        raise Int4rtError("fbank_options needs a kaldi-fbank front end")
    fbank = knf.FbankOptions()
    frame = fbank.frame_opts
    frame.samp_freq = float(frontend.sample_rate)
    frame.frame_length_ms = float(frontend.frame_length_ms)
    frame.frame_shift_ms = float(frontend.frame_shift_ms)
    frame.dither = DITHER
    frame.preemph_coeff = PREEMPHASIS
    frame.remove_dc_offset = True
    frame.window_type = WINDOW
    frame.round_to_power_of_two = True
    frame.snip_edges = options.snip_edges
    fbank.mel_opts.num_bins = frontend.n_mels
    fbank.mel_opts.low_freq = float(options.low_freq_hz)
    fbank.mel_opts.high_freq = float(options.high_freq_hz)
    fbank.use_energy = False
    fbank.use_log_fbank = True
    fbank.use_power = True
    return fbank


def kaldi_fbank(audio: np.ndarray, frontend: Frontend) -> np.ndarray:
    """Log Mel filterbank energies float32 [T, n_mels] of mono samples in [-1, 1]."""
    knf = _library()
    computer = knf.OnlineFbank(fbank_options(frontend))
    computer.accept_waveform(float(frontend.sample_rate),
                             np.ascontiguousarray(audio, dtype=np.float32))
    computer.input_finished()
    count = computer.num_frames_ready
    if count == 0:
        raise Int4rtError(f"audio too short for one kaldi-fbank frame: {audio.shape[0]} samples "
                          f"at {frontend.sample_rate} Hz; supply a longer recording")
    return np.stack([np.asarray(computer.get_frame(i), dtype=np.float32)
                     for i in range(count)])


def _library() -> ModuleType:
    try:
        import kaldi_native_fbank
    except ImportError:
        raise Int4rtError("this model uses the kaldi-fbank front end, which needs the "
                          "kaldi-native-fbank package: pip install kaldi-native-fbank") from None
    return kaldi_native_fbank
