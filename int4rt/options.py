"""Every named option of int4rt with its allowed values, one constant per list.

Each option is a ``Literal`` type and the tuple of its values; code that checks or offers a
choice (argument parsers, config and model-file readers, validators) uses these tuples, so
an unknown name is an error everywhere. This module imports nothing from int4rt, so the
lightest entry point (the CLI's argument parser) can use it.
"""

from __future__ import annotations

from typing import Literal, get_args

Rounding = Literal["double", "single"]  # ARITHMETIC.md §4.3, §4.4
ROUNDING_MODES: tuple[Rounding, ...] = get_args(Rounding)

ProfileName = Literal["int4rt", "tflm"]  # ARITHMETIC.md §11
PROFILES: tuple[ProfileName, ...] = get_args(ProfileName)

JointMode = Literal["additive", "multiplicative"]  # ARITHMETIC.md §9.2
JOINT_MODES: tuple[JointMode, ...] = get_args(JointMode)

BackendName = Literal["numba", "numpy"]  # int4rt/ops/<op>/numba.py or reference.py
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)

Method = Literal["greedy", "beam", "alsd"]  # docs/DECODING.md, "Search options"
METHODS: tuple[Method, ...] = get_args(Method)

FrontendKind = Literal["log-mel", "kaldi-fbank"]  # FORMAT.md §2.6; DECODING.md, "Kaldi fbank"
FRONTEND_KINDS: tuple[FrontendKind, ...] = get_args(FrontendKind)
LOG_MEL, KALDI_FBANK = FRONTEND_KINDS

ManifestFormat = Literal["auto", "int4rt", "nemo", "lhotse", "kaldi"]  # DECODING.md, Manifests
MANIFEST_FORMATS: tuple[ManifestFormat, ...] = get_args(ManifestFormat)

# The converter's choices (docs/CONVERT.md): weight clipping, scale granularity, activation
# range from calibration, and where the LSTM cell scale comes from.
WeightScale = Literal["max", "sawb", "mse"]
WEIGHT_SCALES: tuple[WeightScale, ...] = get_args(WeightScale)

Granularity = Literal["per_row", "per_gate"]
GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)

ActivationRange = Literal["minmax", "percentile", "mse"]
ACTIVATION_RANGES: tuple[ActivationRange, ...] = get_args(ActivationRange)

CellScale = Literal["calibrate", "config"]
CELL_SCALES: tuple[CellScale, ...] = get_args(CellScale)
