"""Calibration data and the value ranges observed on it (docs/CONVERT.md §5).

A calibration set is a folder or a manifest. RNN-T: ``.npy`` float features [T, F] (F = the
config's feature dimension, before CMVN and stacking) or audio files (through
``int4rt.frontend`` when it is installed); a JSONL manifest has one object per line with
``"features"`` or ``"audio"`` (paths relative to the manifest) and an optional ``"text"``
transcript. LM: ``.txt`` files (one sentence per line), or a JSONL manifest with ``"text"``.
The float model runs over every utterance and :class:`RangeObserver` keeps the extremes and a
uniform subsample of each tensor whose format the converter chooses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from int4rt import trace_names as names
from int4rt.errors import Int4rtError
from int4rt.model.config import FrontendConfig, LmConfig, ModelConfig

from .errors import ConvertError
from .float_model import FloatLm, FloatRnnt

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SAMPLE_CAPACITY = 65536  # values kept per observed tensor (uniform subsample)
JOINT_PAIRS = 4096  # (frame, history) pairs of an utterance the joint is calibrated on, at most
_KEPT = (names.ENCODER_INPUT, names.JOINT_ENC_PROJ, names.JOINT_PRED_PROJ)


def observer_name(trace_name: str) -> str | None:
    """Which observer a float-model record feeds: a layer's hidden states (both directions
    together) under the layer name, the joint's tanh under ``joint``, cell states, the
    encoder input and the joint projections under their own names; None for the rest.
    """
    lstm = names.parse_lstm_record(trace_name)
    if lstm is not None and lstm.record == "hidden":
        return lstm.layer
    if (lstm is not None and lstm.record == "cell") or trace_name in _KEPT:
        return trace_name
    if trace_name == names.name(names.JOINT, "tanh"):
        return names.JOINT
    return None


@dataclass(frozen=True)
class Utterance:
    """One calibration item: float features (RNN-T) and/or a transcript."""

    name: str
    features: np.ndarray | None
    text: str | None


class RangeObserver:
    """Exact min/max and a uniform random subsample (bottom-k random keys) of a tensor."""

    def __init__(self, seed: int, capacity: int = SAMPLE_CAPACITY) -> None:
        self.low, self.high, self.count = np.inf, -np.inf, 0
        self._rng = np.random.default_rng(seed)
        self._capacity = capacity
        self._keys = np.zeros(0)
        self._values = np.zeros(0)

    def add(self, values: np.ndarray) -> None:
        """Observe every entry of ``values``."""
        flat = np.asarray(values, dtype=np.float64).ravel()
        if not flat.size:
            return
        self.low, self.high = min(self.low, float(flat.min())), max(self.high, float(flat.max()))
        self.count += flat.size
        keys = np.concatenate([self._keys, self._rng.random(flat.size)])
        values = np.concatenate([self._values, flat])
        if keys.size > self._capacity:
            keep = np.argpartition(keys, self._capacity)[:self._capacity]
            keys, values = keys[keep], values[keep]
        self._keys, self._values = keys, values

    @property
    def max_abs(self) -> float:
        """max |value| seen (0 before any)."""
        return max(abs(self.low), abs(self.high)) if self.count else 0.0

    @property
    def samples(self) -> np.ndarray:
        """The subsample (all values when fewer than the capacity were seen)."""
        return self._values


@dataclass
class Calibration:
    """Observers by name, and per utterance the label ids used for the predictor/LM."""

    observers: dict[str, RangeObserver] = field(default_factory=dict)
    labels: list[list[int]] = field(default_factory=list)
    frames: int = 0
    label_source: str = "none"

    def observe(self, name: str, values: np.ndarray) -> None:
        """A float-model record callback: keep the tensors whose ranges matter."""
        key = observer_name(name)
        if key is not None:
            if key not in self.observers:
                self.observers[key] = RangeObserver(seed=len(self.observers))
            self.observers[key].add(values)


def tokenize(text: str, vocab: tuple[str, ...], skip: int, where: str) -> list[int]:
    """Label ids of ``text`` by longest match over ``vocab`` (never id ``skip``)."""
    ids = {token: index for index, token in enumerate(vocab) if index != skip}
    longest = max(map(len, ids))
    out, pos = [], 0
    while pos < len(text):
        for size in range(min(longest, len(text) - pos), 0, -1):
            token = ids.get(text[pos:pos + size])
            if token is not None:
                out.append(token)
                pos += size
                break
        else:
            raise ConvertError(f"{where}: character {text[pos]!r} at position {pos} is not in "
                               "the vocabulary")
    return out


def read_calibration_set(path: str | Path, config: ModelConfig,
                         limit: int | None) -> list[Utterance]:
    """The utterances of a calibration folder or manifest (at most ``limit``), loaded."""
    source = Path(path)
    lm = isinstance(config, LmConfig)
    if source.is_dir():
        suffixes = (".txt",) if lm else (".npy", *AUDIO_SUFFIXES)
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in suffixes)
        if lm:
            entries = [{"text": line} for file in files for line in _lines(file)]
        else:
            entries = [{"features" if p.suffix.lower() == ".npy" else "audio": p.name}
                       for p in files]
        base = source
    elif source.is_file() and source.suffix.lower() == ".txt" and lm:
        entries, base = [{"text": line} for line in _lines(source)], source.parent
    elif source.is_file():
        entries, base = _manifest(source), source.parent
    else:
        raise ConvertError(f"calibration set {str(source)!r}: no such file or folder")
    if not entries:
        raise ConvertError(f"calibration set {str(source)!r} holds no utterances "
                           f"({'text lines' if lm else '.npy features or audio files'})")
    entries = entries[:limit] if limit else entries
    return [_utterance(entry, base, index, config) for index, entry in enumerate(entries)]


def _lines(file: Path) -> list[str]:
    try:
        return [line.strip() for line in file.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise ConvertError(f"cannot read calibration text {str(file)!r}: {error}") from None


def _manifest(file: Path) -> list[dict[str, object]]:
    entries = []
    for number, line in enumerate(_lines(file), start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            raise ConvertError(f"calibration manifest {str(file)!r} line {number}: expected a "
                               "JSON object per line (JSONL)")
        entries.append(entry)
    return entries


def _utterance(entry: dict[str, object], base: Path, index: int,
               config: ModelConfig) -> Utterance:
    where = f"calibration item {index}"
    text = entry.get("text")
    if text is not None and not isinstance(text, str):
        raise ConvertError(f"{where}: 'text' must be a string")
    if isinstance(config, LmConfig):
        if text is None:
            raise ConvertError(f"{where}: an LM calibration item needs 'text'")
        return Utterance(where, None, text)
    kinds = [key for key in ("features", "audio") if key in entry]
    if len(kinds) != 1 or not isinstance(entry[kinds[0]], str):
        raise ConvertError(f"{where}: needs exactly one of 'features' (.npy) or 'audio' (a path)")
    path = base / str(entry[kinds[0]])
    if kinds[0] == "features":
        return Utterance(str(path), _features(path, config.frontend.feature_dim), text)
    return Utterance(str(path), _audio_features(path, config.frontend), text)


def _features(path: Path, dims: int) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ConvertError(f"cannot read features {str(path)!r}: {error}") from None
    if array.ndim != 2 or array.shape[1] != dims or array.dtype.kind != "f":
        raise ConvertError(f"features {str(path)!r}: expected float [frames, {dims}], got "
                           f"{array.dtype} {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ConvertError(f"features {str(path)!r}: non-finite values (NaN or inf)")
    return array


def _audio_features(path: Path, frontend: FrontendConfig) -> np.ndarray:
    try:
        from int4rt.frontend import compute_features, load_audio
    except ImportError:
        raise ConvertError(f"calibration audio {str(path)!r}: this int4rt has no front end "
                           "(int4rt.frontend); calibrate from feature files (.npy float "
                           "[frames, features]) instead") from None
    from int4rt.model.rnnt import Frontend

    settings = Frontend(frontend.sample_rate, frontend.n_mels, frontend.frame_length_ms,
                        frontend.frame_shift_ms, frontend.deltas,
                        kaldi_fbank=frontend.kaldi_fbank)
    try:
        features = compute_features(load_audio(path, frontend.sample_rate), settings)
    except Int4rtError as error:
        raise ConvertError(f"calibration audio {str(path)!r}: {error}") from None
    if not np.all(np.isfinite(features)):
        raise ConvertError(f"features of {str(path)!r}: non-finite values (NaN or inf)")
    return features


def cmvn_statistics(utterances: list[Utterance]) -> tuple[np.ndarray, np.ndarray]:
    """Global mean and standard deviation (float32) over every calibration frame."""
    frames = np.concatenate([u.features for u in utterances]).astype(np.float64)
    std = np.maximum(frames.std(axis=0), 1e-5)
    return frames.mean(axis=0).astype(np.float32), std.astype(np.float32)


def calibrate(model: FloatRnnt | FloatLm, utterances: list[Utterance], vocab: tuple[str, ...],
              progress: bool) -> Calibration:
    """Run the float model over ``utterances``, observing every range the converter needs.

    Predictor histories come from the transcripts where given, else from a greedy search of
    the float model; LM histories from the text. The joint sees at most ``JOINT_PAIRS``
    (frame, history) pairs per utterance, drawn at random.
    """
    result = Calibration()
    sources = set()
    rng = np.random.default_rng(0)
    for utt in tqdm(utterances, desc="calibrating", unit="utt", disable=None if progress else True):
        if isinstance(model, FloatLm):
            ids = tokenize(utt.text or "", vocab, 0, utt.name)
            model.log_probs(ids, result.observe)
            result.labels.append(ids)
            sources.add("text")
            continue
        enc = model.encode(utt.features, result.observe)
        result.frames += len(utt.features)
        if utt.text is not None:
            labels = tokenize(utt.text, vocab, model.blank_id, utt.name)
            sources.add("transcripts")
        else:
            labels = model.greedy_labels(enc)
            sources.add("greedy search")
        pairs = len(enc) * (len(labels) + 1)
        chosen = np.sort(rng.choice(pairs, min(pairs, JOINT_PAIRS), replace=False))
        model.joint(enc, model.predict(labels, result.observe), result.observe,
                    pairs=np.divmod(chosen, len(labels) + 1))
        result.labels.append(labels)
    result.label_source = " + ".join(sorted(sources)) or "none"
    return result
