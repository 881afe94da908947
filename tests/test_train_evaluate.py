"""Per-voice scoring of the FP32 evaluation command (int4rt_train.evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from int4rt.metrics import wer  # noqa: E402
from int4rt.model.config import RnntConfig, load_config  # noqa: E402
from int4rt_train.corpus import write_shard  # noqa: E402
from int4rt_train.evaluate import main, voice_families  # noqa: E402
from int4rt_train.model import Transducer  # noqa: E402
from int4rt_train.train import MAX_FRAMES, greedy_texts, load_utterances  # noqa: E402

CONFIG = Path("configs/tiny.json")
VOICES = ["flite:slt:s1.1", "espeak:en-us+m3:s150:p40", "espeak:en-gb+m3:s170:p60", None]


def test_voice_families_drop_rate_pitch_and_accent(tmp_path: Path) -> None:
    manifest = tmp_path / "features.jsonl"
    rows = [{"id": f"u{i}", "text": "a", **({"voice": v} if v else {})}
            for i, v in enumerate([*VOICES, "espeak:en-us"])]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert voice_families(manifest) == {"u0": "flite:slt", "u1": "espeak:m3",
                                        "u2": "espeak:m3", "u3": "unknown",
                                        "u4": "espeak:default"}


def _random_model(config: RnntConfig, folder: Path) -> tuple[Transducer, Path]:
    """A seeded random model and its weights file, as ``evaluate --weights`` reads it."""
    torch.manual_seed(0)
    model = Transducer(config)
    weights = folder / "w.safetensors"
    save_file({f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return model, weights


def test_by_voice_scores_each_voice_on_its_own_utterances(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(CONFIG)
    rng = np.random.default_rng(1)
    stem = tmp_path / "corpus" / "sets" / "dev-fortunes" / "features"
    stem.parent.mkdir(parents=True)
    texts = ["the sea", "no", "hot tea", "stone", "la la", "to the"]
    feats = [rng.standard_normal((30 + 5 * i, config.frontend.feature_dim)).astype(np.float32)
             for i in range(len(texts))]
    write_shard(stem, [{"id": f"d{i}", "text": t, **({"voice": VOICES[i % 4]}
                                                     if VOICES[i % 4] else {})}
                       for i, t in enumerate(texts)], feats)
    model, weights = _random_model(config, tmp_path)
    assert main(["--weights", str(weights), "--config", str(CONFIG), "--corpus",
                 str(tmp_path / "corpus"), "--by-voice"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    utterances = load_utterances([stem], config.vocab)
    hyps = greedy_texts(model, utterances, config.vocab)
    groups = {"flite:slt": [0, 4], "espeak:m3": [1, 2, 5], "unknown": [3]}
    assert lines[0]["utterances"] == 6 and "voice" not in lines[0]
    assert {line["voice"]: line["utterances"] for line in lines[1:]} == \
        {voice: len(members) for voice, members in groups.items()}
    for line in lines[1:]:
        members = groups[line["voice"]]
        expected = 100 * wer([texts[i] for i in members], [hyps[i] for i in members])
        assert line["wer"] == round(expected, 2)


def test_utterances_past_the_training_lattice_limit_are_scored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(CONFIG)
    rng = np.random.default_rng(2)
    stem = tmp_path / "corpus" / "sets" / "dev-fortunes" / "features"
    stem.parent.mkdir(parents=True)
    lengths = (40, MAX_FRAMES + 8)
    write_shard(stem, [{"id": f"d{i}", "text": "the sea"} for i in range(2)],
                [rng.standard_normal((n, config.frontend.feature_dim)).astype(np.float32)
                 for n in lengths])
    _, weights = _random_model(config, tmp_path)
    assert main(["--weights", str(weights), "--config", str(CONFIG), "--corpus",
                 str(tmp_path / "corpus")]) == 0
    assert json.loads(capsys.readouterr().out)["utterances"] == 2
    assert [u.uid for u in load_utterances([stem], config.vocab)] == ["d0"]


def test_missing_weights_or_set_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "w.safetensors"
    with pytest.raises(SystemExit) as stop:
        main(["--weights", str(weights), "--config", str(CONFIG), "--corpus", str(tmp_path)])
    assert stop.value.code == 2 and "no such milestone folder" in capsys.readouterr().err
    weights.write_bytes(b"")
    with pytest.raises(SystemExit) as stop:
        main(["--weights", str(weights), "--config", str(CONFIG), "--corpus", str(tmp_path),
              "--sets", "dev-fortunes", "test-bible-clean"])
    assert stop.value.code == 2
    assert "no feature shard for dev-fortunes, test-bible-clean" in capsys.readouterr().err
