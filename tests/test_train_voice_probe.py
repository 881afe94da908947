"""The per-voice probe (int4rt_train.voice_probe): parsing, mean replacement, and its scores
against an independent decode of the same features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from int4rt.metrics import cer, wer  # noqa: E402
from int4rt.model.config import load_config  # noqa: E402
from int4rt_train import synth, voice_probe  # noqa: E402
from int4rt_train.corpus import Utterance  # noqa: E402
from int4rt_train.data import features_of  # noqa: E402
from int4rt_train.model import Transducer  # noqa: E402
from int4rt_train.train import greedy_texts  # noqa: E402

CONFIG = Path("configs/tiny.json")


def test_parse_voice_accepts_every_synthesizer() -> None:
    assert voice_probe.parse_voice("flite:awb") == synth.Voice("flite", "awb")
    assert voice_probe.parse_voice("espeak:en-us+m3") == synth.Voice("espeak", "en-us+m3")
    assert voice_probe.parse_voice("rhvoice:bdl") == synth.Voice("rhvoice", "bdl", 100, 100)
    assert voice_probe.parse_voice("pico:en-GB").label() == "pico:en-GB"
    assert voice_probe.parse_voice("piper:joe") == synth.Voice("piper", "joe", 100)


def test_parse_voice_names_the_piper_voices() -> None:
    with pytest.raises(ValueError, match="Piper voices here are joe"):
        voice_probe.parse_voice("piper:amy")


@pytest.mark.parametrize("spec", ["awb", "festival:kal", "flite:", "espeak:en:s170"])
def test_parse_voice_rejects_other_forms(spec: str) -> None:
    with pytest.raises(ValueError, match="expected flite:NAME"):
        voice_probe.parse_voice(spec)


def test_with_mean_moves_every_column_mean() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(3.0, 2.0, (50, 6)).astype(np.float32)
    target = np.arange(6, dtype=np.float32)
    moved = voice_probe.with_mean(features, target)
    np.testing.assert_allclose(moved.mean(axis=0), target, atol=1e-5)
    np.testing.assert_allclose(np.diff(moved, axis=0), np.diff(features, axis=0), atol=1e-5)


def test_read_texts_from_manifest_and_text_file(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                                for i, t in enumerate(["a b", "c", "d"])))
    plain = tmp_path / "t.txt"
    plain.write_text("one\n\ntwo\nthree\n")
    assert voice_probe.read_texts(manifest, 2) == ["a b", "c"]
    assert voice_probe.read_texts(plain, 5) == ["one", "two", "three"]


def test_probe_scores_each_voice_on_the_same_texts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(CONFIG)
    texts = ["the sea", "hot tea", "no"]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")

    def fake_synthesize(text: str, voice: synth.Voice,
                        sox_effects: tuple[str, ...] = ()) -> np.ndarray:
        seed = [len(text), len(voice.name), len(sox_effects)]
        return (0.1 * np.random.default_rng(seed).standard_normal(1600 * len(text))
                ).astype(np.float32)

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    monkeypatch.setattr(synth, "check_tools", lambda engines, texts: None)
    monkeypatch.setattr(synth, "flite_voices", lambda: ("kal", "awb"))
    torch.manual_seed(0)
    model = Transducer(config)
    weights = tmp_path / "w.safetensors"
    save_file({f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    assert voice_probe.main(["--weights", str(weights), "--config", str(CONFIG), "--texts",
                             str(tmp_path / "texts.txt"), "--voices", "flite:awb",
                             "espeak:en-us+m3", "--cmn", "--narrowband"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["voice"], line.get("variant")) for line in lines] == [
        (voice, variant) for voice in ("flite:awb", "espeak:en-us+m3")
        for variant in (None, "cmn", "8k", "8k+cmn")]
    mean = model.frontend.cmvn_mean.numpy()
    for line in lines:
        voice = voice_probe.parse_voice(line["voice"])
        effects = ("rate", "8000") if line.get("variant", "").startswith("8k") else ()
        feats = [features_of(np.round(fake_synthesize(t, voice, effects) * 32768.0
                                      ).astype(np.int16)) for t in texts]
        if line.get("variant", "").endswith("cmn"):
            feats = [f - f.mean(axis=0) + mean for f in feats]
        utts = [Utterance(f"x{i}", t, f.astype(np.float32)) for i, (t, f) in
                enumerate(zip(texts, feats, strict=True))]
        hyps = greedy_texts(model, utts, config.vocab)
        assert line["utterances"] == 3
        assert line["wer"] == round(100 * wer(texts, hyps), 2)
        assert line["cer"] == round(100 * cer(texts, hyps), 2)


def test_bad_voice_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        voice_probe.main(["--weights", str(tmp_path), "--config", str(CONFIG), "--texts",
                          str(tmp_path / "t.txt"), "--voices", "festival:kal"])
    assert stop.value.code == 2


def test_unknown_flite_voice_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """flite reads an unknown ``-voice`` with another voice and exits 0; the probe refuses it."""
    (tmp_path / "t.txt").write_text("hello\n")
    monkeypatch.setattr(synth, "check_tools", lambda engines, texts: None)
    monkeypatch.setattr(synth, "flite_voices", lambda: ("kal", "awb"))
    with pytest.raises(SystemExit) as stop:
        voice_probe.main(["--weights", str(tmp_path), "--config", str(CONFIG), "--texts",
                          str(tmp_path / "t.txt"), "--voices", "flite:awb", "flite:nosuch"])
    assert stop.value.code == 2
    assert "unknown flite voice flite:nosuch: flite has kal, awb" in capsys.readouterr().err


def test_a_missing_synthesizer_is_named_only_when_probed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``pico2wave``, a flite probe runs on; a Pico probe stops with the package."""
    monkeypatch.setattr(shutil, "which",
                        lambda tool: None if tool == "pico2wave" else f"/usr/bin/{tool}")
    monkeypatch.setattr(synth, "flite_voices", lambda: ("kal", "awb"))
    (tmp_path / "t.txt").write_text("hello\n")
    arguments = ["--weights", str(tmp_path), "--config", str(CONFIG), "--texts",
                 str(tmp_path / "t.txt"), "--voices"]
    synth.check_tools({"flite", "espeak"}, texts=False)
    with pytest.raises(synth.MissingToolError, match="libttspico-utils"):
        synth.check_tools({"flite", "pico"}, texts=False)
    with pytest.raises(SystemExit) as stop:
        voice_probe.main([*arguments, "pico:en-US"])
    assert "voice_probe: missing corpus tools" in str(stop.value)
    assert "libttspico-utils" in str(stop.value)
