"""The ``kaldi-fbank`` front end: config, model file, features, converter warning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import pytest
import soundfile as sf
from naive_fbank import kaldi_fbank as naive_kaldi_fbank

import int4rt
from int4rt.errors import Int4rtError
from int4rt.frontend import compute_features
from int4rt.model.config import load_config, parse_config
from int4rt.model.container import load_model, save_model
from int4rt.model.frontend_kinds import KaldiFbankOptions
from int4rt.model.random_model import random_model
from int4rt_convert.frontend_check import FrontendMismatchWarning, warn_frontend_mismatch
from int4rt_convert.mapping import load_mapping

ROOT = Path(__file__).parents[1]
NAIVE_TOLERANCE = 5e-4  # natural-log units: float32 kaldi-native-fbank vs the float64 twin


def _config(**frontend: object) -> dict:
    data = json.loads((ROOT / "configs" / "tiny.json").read_text())
    data["frontend"].update({"sample_rate": 16000, "n_mels": 23, "deltas": 0, "cmvn": False,
                             **frontend})
    return data


def _reference(samples: np.ndarray, rate: int, bins: int, low: float, high: float,
               snip: bool) -> np.ndarray:
    """kaldi-native-fbank with options written out here, by hand, from DECODING.md."""
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = rate
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = snip
    opts.mel_opts.num_bins = bins
    opts.mel_opts.low_freq = low
    opts.mel_opts.high_freq = high
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(rate, samples.astype(np.float32))
    computer.input_finished()
    return np.array([computer.get_frame(i) for i in range(computer.num_frames_ready)])


@pytest.mark.parametrize(("snip", "low", "high"), [(False, 20.0, -400.0), (True, 64.0, 7000.0)])
def test_features_equal_kaldi_native_fbank(tmp_path, snip, low, high):
    """Tolerance 0 against kaldi-native-fbank, 5e-4 against an independent NumPy twin."""
    config = parse_config(_config(kind="kaldi-fbank", kaldi_fbank={
        "low_freq_hz": low, "high_freq_hz": high, "snip_edges": snip}))
    path = tmp_path / "fbank.safetensors"
    save_model(random_model(config, 0), path)
    recognizer = int4rt.load(path)
    assert recognizer.model.frontend.kind == "kaldi-fbank"
    rng = np.random.default_rng(1)
    audio = tmp_path / "a.wav"
    sf.write(audio, 0.2 * rng.standard_normal(12345), 16000, subtype="FLOAT")
    features = recognizer.features(str(audio))
    samples = sf.read(audio, dtype="float32")[0]
    expected = _reference(samples, 16000, 23, low, high, snip)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, expected)
    twin = naive_kaldi_fbank(samples.astype(np.float64), 16000, num_bins=23, frame_length_ms=25,
                             frame_shift_ms=10, low_freq=low, high_freq=high, snip_edges=snip)
    assert features.shape == twin.shape == ((12345 - 400) // 160 + 1 if snip else 77, 23)
    assert np.abs(features - twin).max() < NAIVE_TOLERANCE


def test_config_defaults_and_deltas():
    config = parse_config(_config(kind="kaldi-fbank", deltas=1))
    assert config.frontend.kaldi_fbank == KaldiFbankOptions(20.0, -400.0, False)
    model = random_model(config, 3)
    samples = np.random.default_rng(2).standard_normal(4000).astype(np.float32) * 0.1
    features = compute_features(samples, model.frontend)
    base = _reference(samples, 16000, 23, 20.0, -400.0, False)
    np.testing.assert_array_equal(features[:, :23], base)
    # Δ of the fbank block: the regression formula over ±2 frames, edges replicated.
    padded = np.concatenate([base[:1], base[:1], base, base[-1:], base[-1:]]).astype(np.float64)
    delta = sum(n * (padded[2 + n:2 + n + len(base)] - padded[2 - n:2 - n + len(base)])
                for n in (1, 2)) / 10
    np.testing.assert_allclose(features[:, 23:], delta, rtol=0, atol=1e-5)


def test_old_files_load_as_log_mel(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_model(random_model(load_config(ROOT / "configs" / "tiny.json"), 0), path)
    header = path.read_bytes()[8:4000]
    assert b'"kind"' not in header and b"kaldi_fbank" not in header  # bytes as before
    model = load_model(path)
    assert model.frontend.kind == "log-mel" and model.frontend.kaldi_fbank is None


@pytest.mark.parametrize(("frontend", "message"), [
    ({"kind": "mfcc"}, "frontend.kind: expected one of"),
    ({"kind": "kaldi-fbank", "kaldi_fbank": {"low_freq_hz": 9000}}, "low_freq_hz < high"),
    ({"kind": "kaldi-fbank", "kaldi_fbank": {"snip_edges": 1}}, "snip_edges: expected true"),
    ({"kind": "kaldi-fbank", "kaldi_fbank": {"dither": 1}}, "dither: unknown key"),
    ({"kind": "log-mel", "kaldi_fbank": {}}, "kaldi_fbank: unknown key"),
])
def test_bad_frontend_configs(frontend, message):
    with pytest.raises(Int4rtError, match=message):
        parse_config(_config(**frontend))


def test_converter_warns_for_icefall_mapping_with_log_mel():
    mapping = load_mapping(ROOT / "examples" / "mapping_icefall.json")
    log_mel = parse_config(_config())
    with pytest.warns(FrontendMismatchWarning, match="kaldi-fbank"):
        warn_frontend_mismatch(mapping, log_mel)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_frontend_mismatch(mapping, parse_config(_config(kind="kaldi-fbank")))
        warn_frontend_mismatch(type(mapping)(), log_mel)  # no mapping: no warning


def test_fbank_files_are_version_2_and_version_1_refuses_kind(tmp_path):
    from test_container import join_file, split_file

    from int4rt.model.container import load_model_bytes

    config = parse_config(_config(kind="kaldi-fbank"))
    path = tmp_path / "fbank.safetensors"
    save_model(random_model(config, 0), path)
    meta, tensors = split_file(path.read_bytes())
    assert meta["format_version"] == 2
    assert meta["frontend"]["kind"] == "kaldi-fbank"
    assert meta["frontend"]["kaldi_fbank"] == {"low_freq_hz": 20.0, "high_freq_hz": -400.0,
                                               "snip_edges": False}
    meta["format_version"] = 1
    with pytest.raises(Int4rtError, match=r"frontend\.kind: needs format_version 2"):
        load_model_bytes(join_file(meta, tensors))
    meta["format_version"] = 2
    del meta["frontend"]["kaldi_fbank"]["snip_edges"]
    with pytest.raises(Int4rtError, match=r"kaldi_fbank\.snip_edges: missing"):
        load_model_bytes(join_file(meta, tensors))


def test_validation_refuses_bad_options_built_in_python(tmp_path):
    import dataclasses

    from int4rt.errors import FormatError

    model = random_model(parse_config(_config(kind="kaldi-fbank")), 0)
    # 16 kHz: Nyquist 8000 Hz, so high_freq_hz -7990 leaves 10 Hz, below low_freq_hz 20 Hz.
    bad = dataclasses.replace(model, frontend=dataclasses.replace(
        model.frontend, kaldi_fbank=KaldiFbankOptions(high_freq_hz=-7990.0)))
    with pytest.raises(FormatError, match=r"frontend\.kaldi_fbank: need 0 <= low_freq_hz < "
                                          r"high frequency <= 8000 Hz .*high 10 Hz"):
        save_model(bad, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_inspect_names_the_kind(tmp_path, capsys):
    from int4rt.cli import main

    path = tmp_path / "fbank.safetensors"
    save_model(random_model(parse_config(_config(kind="kaldi-fbank")), 0), path)
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format_version"] == 2 and report["frontend"]["kind"] == "kaldi-fbank"
    assert main(["inspect", str(path)]) == 0
    assert "frontend          kaldi-fbank, 23 features at 16000 Hz" in capsys.readouterr().out
