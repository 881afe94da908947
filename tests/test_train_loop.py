"""Training loop: a step lowers the loss; resuming from a checkpoint reproduces the run exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from int4rt.model.config import load_config  # noqa: E402
from int4rt_train.accuracy import qat_export  # noqa: E402
from int4rt_train.batches import collate, repeat_voices, voice_repeats  # noqa: E402
from int4rt_train.corpus import Utterance, read_shard, write_shard  # noqa: E402
from int4rt_train.lm import LmOptions, bits_per_char, read_sentences, train_lm  # noqa: E402
from int4rt_train.milestone import main as milestone_main  # noqa: E402
from int4rt_train.milestone import read_milestone, write_milestone  # noqa: E402
from int4rt_train.model import CharLm, Transducer  # noqa: E402
from int4rt_train.qat import QAT, QatOptions, export  # noqa: E402
from int4rt_train.rnnt_loss import rnnt_loss  # noqa: E402
from int4rt_train.train import (  # noqa: E402
    Options,
    evaluate,
    load_utterances,
    read_weights,
    train,
)

CONFIG = Path("configs/tiny.json")
WORDS = ("hello", "to", "the", "last", "tea", "hot", "sea", "no", "stone", "la")


def _corpus(root: Path, shards: int = 2, per_shard: int = 6,
            voices: tuple[str, ...] = ("",)) -> Path:
    rng = np.random.default_rng(0)
    dim = load_config(CONFIG).frontend.feature_dim
    for name, count in [(f"train/train-{i:05d}", per_shard) for i in range(shards)] + [
            ("sets/dev-fortunes/features", 3)]:
        stem = root / name
        stem.parent.mkdir(parents=True, exist_ok=True)
        texts = [" ".join(rng.choice(WORDS, rng.integers(1, 4))) for _ in range(count)]
        feats = [rng.standard_normal((int(rng.integers(20, 60)), dim)).astype(np.float32) + 2
                 for _ in texts]
        write_shard(stem, [{"id": f"{stem.name}-{i}", "text": t, "voice": voices[i % len(voices)]}
                           for i, t in enumerate(texts)], feats)
    return root


def test_one_step_lowers_the_loss(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    utterances = read_shard(_corpus(tmp_path) / "train" / "train-00000")
    features, lengths, labels, label_lengths = collate(utterances, config.vocab)
    torch.manual_seed(0)
    model = Transducer(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        log_probs, enc_lengths = model(features, lengths, labels)
        return rnnt_loss(log_probs, labels, enc_lengths, label_lengths).sum()

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after.item() < before.item() - 1e-3


def _options(corpus: Path, run: Path, steps: int, masks: int = 0) -> Options:
    return Options(corpus=corpus, config=CONFIG, run=run, batch_frames=150, max_batch=4,
                   warmup_steps=2, log_every=2, dev_minutes=1e9, checkpoint_minutes=1e9,
                   max_steps=steps, freq_masks=masks, time_masks=masks, mel_warp=0.05 * masks)


@pytest.mark.parametrize("masks", [0, 2])
def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path, masks: int) -> None:
    corpus = _corpus(tmp_path / "corpus")
    straight = train(_options(corpus, tmp_path / "a", 7, masks))
    train(_options(corpus, tmp_path / "b", 3, masks))     # interrupted after 3 steps
    resumed = train(_options(corpus, tmp_path / "b", 7, masks))
    assert straight == resumed
    assert straight["epoch"] >= 1                  # the run crossed an epoch boundary
    a = load_file(str(tmp_path / "a" / "ckpt-000000007.safetensors"))
    b = load_file(str(tmp_path / "b" / "ckpt-000000007.safetensors"))
    assert a.keys() == b.keys()
    assert any(key.startswith("optim.") for key in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_voice_repeats_parse_and_reject_bad_specs() -> None:
    assert voice_repeats("") == {}
    assert voice_repeats("flite:awb=3, espeak:en-us=2") == {"flite:awb": 3, "espeak:en-us": 2}
    for bad in ("flite:awb", "flite:awb=0", "=3", "flite:awb=x", "flite:awb=1.5"):
        with pytest.raises(ValueError, match="VOICE_PREFIX=COUNT"):
            voice_repeats(bad)


def test_repeat_voices_lists_matching_utterances_count_times() -> None:
    empty = np.zeros((1, 1), np.float32)
    utts = [Utterance(str(i), "a", empty, voice) for i, voice in
            enumerate(["flite:awb", "flite:kal16", "espeak:en-us+m1", "flite:awb"])]
    out = repeat_voices(utts, {"flite:awb": 3, "espeak:": 2})
    assert [u.uid for u in out] == ["0", "0", "0", "1", "2", "2", "3", "3", "3"]
    assert repeat_voices(utts, {}) == utts
    with pytest.raises(ValueError, match="flite:slt"):
        repeat_voices(utts, {"flite:slt": 2})


def test_repeat_voice_lengthens_the_epoch_and_a_misspelt_voice_stops_the_run(
        tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus", voices=("flite:awb", "flite:kal", "espeak:en"))
    steps = {}
    for name, spec in (("plain", ""), ("awb", "flite:awb=4")):
        opts = _options(corpus, tmp_path / name, 40)
        opts.repeat_voice = spec
        state = train(opts)
        steps[name] = state["step"] / max(state["epoch"], 1)
    # one third of the utterances four times: the epoch has twice as many utterances
    assert steps["awb"] > 1.5 * steps["plain"]
    opts = _options(corpus, tmp_path / "bad", 2)
    opts.repeat_voice = "flite:slt=2"
    with pytest.raises(SystemExit, match="flite:slt"):
        train(opts)


def test_add_set_joins_every_epoch_and_a_missing_set_stops_the_run(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    extra = corpus / "sets" / "recorded" / "features"
    extra.parent.mkdir()
    rng = np.random.default_rng(5)
    dim = load_config(CONFIG).frontend.feature_dim
    write_shard(extra, [{"id": f"r{i}", "text": "the sea", "voice": "recorded:x"}
                        for i in range(12)],
                [rng.standard_normal((40, dim)).astype(np.float32) + 2 for _ in range(12)])
    steps = {}
    for name, added, repeat in (("plain", "", ""), ("added", "recorded", ""),
                                ("repeated", "recorded", "recorded:=3")):
        opts = _options(corpus, tmp_path / name, 60)
        opts.add_set, opts.repeat_voice = added, repeat
        state = train(opts)
        steps[name] = state["step"] / max(state["epoch"], 1)
    # 12 training utterances; 12 more, then 36 more: twice and four times as long an epoch
    assert 1.5 * steps["plain"] < steps["added"] < 2.5 * steps["plain"]
    assert steps["repeated"] > 1.5 * steps["added"]
    opts = _options(corpus, tmp_path / "bad", 2)
    opts.add_set = "recorded,no-such-set"
    with pytest.raises(SystemExit, match="no set no-such-set"):
        train(opts)


def test_milestone_parts_hold_every_model_tensor(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    train(_options(corpus, tmp_path / "run", 1))
    checkpoint = tmp_path / "run" / "ckpt-000000001.safetensors"
    parts = write_milestone(checkpoint, tmp_path / "milestone", max_bytes=70000)
    assert len(parts) > 1 and all(p.stat().st_size < 70000 + 2000 for p in parts)
    model = Transducer(load_config(CONFIG))
    model.load_state_dict(read_milestone(tmp_path / "milestone"))
    saved = load_file(str(checkpoint))
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[f"model.{name}"]), name


def test_init_from_reads_folder_checkpoint_and_merged_file_alike(tmp_path: Path) -> None:
    """``--init-from`` takes a milestone folder, a checkpoint or ``milestone --merge`` output."""
    corpus = _corpus(tmp_path / "corpus")
    train(_options(corpus, tmp_path / "run", 1))
    checkpoint = tmp_path / "run" / "ckpt-000000001.safetensors"
    write_milestone(checkpoint, tmp_path / "milestone", max_bytes=70000)
    merged = tmp_path / "merged.safetensors"
    assert milestone_main(["--merge", str(tmp_path / "milestone"), "-o", str(merged)]) == 0
    saved = load_file(str(checkpoint))
    for source in (tmp_path / "milestone", checkpoint, merged):
        weights = read_weights(source)
        assert weights.keys() == {k[len("model."):] for k in saved if k.startswith("model.")}
        for name, value in weights.items():
            assert torch.equal(value, saved[f"model.{name}"]), (source, name)
    with pytest.raises(SystemExit, match="no such milestone folder or safetensors file"):
        read_weights(tmp_path / "missing.safetensors")


def test_char_lm_training_lowers_dev_bits_per_char(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice(WORDS[:4], 3)) for _ in range(64)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "dev.txt").write_text("\n".join(lines[:8]) + "\n")
    opts = LmOptions(text=tmp_path / "train.txt", config=Path("configs/lm-tiny.json"),
                     run=tmp_path / "run", dev_text=tmp_path / "dev.txt", lr=1e-2, batch=16,
                     epochs=10, log_every=1000, dev_minutes=1e9)
    config = load_config(opts.config)
    torch.manual_seed(opts.seed)
    before = bits_per_char(CharLm(config), read_sentences(opts.dev_text, config.vocab))
    state = train_lm(opts)
    assert state["epoch"] == 10
    assert state["dev_bpc"] < 0.6 * before
    newest = sorted((tmp_path / "run").glob("ckpt-*.safetensors"))[-1]
    write_milestone(newest, tmp_path / "milestone", max_bytes=10 ** 7)
    info = json.loads((tmp_path / "milestone" / "milestone.json").read_text())
    assert info["dev_bpc"] == state["dev_bpc"] and info["step"] == state["step"]


def _qat_options(corpus: Path, run: Path, init: Path, steps: int) -> QatOptions:
    return QatOptions(corpus=corpus, config=CONFIG, run=run, init_from=init, batch_frames=150,
                      max_batch=4, warmup_steps=2, log_every=2, dev_minutes=1e9,
                      checkpoint_minutes=1e9, max_steps=steps, calib_utterances=6, lr=1e-3)


def test_qat_run_resumes_exactly_and_exports(tmp_path: Path) -> None:
    """QAT through the shared loop: calibrated from FP32 weights, resumed bit for bit, exported
    with the converter's names, and its dev greedy output is the engine's."""
    corpus = _corpus(tmp_path / "corpus")
    train(_options(corpus, tmp_path / "fp32", 1))
    init = tmp_path / "fp32" / "ckpt-000000001.safetensors"
    straight = train(_qat_options(corpus, tmp_path / "a", init, 4), QAT)
    train(_qat_options(corpus, tmp_path / "b", init, 2), QAT)
    resumed = train(_qat_options(corpus, tmp_path / "b", init, 4), QAT)
    assert straight == resumed
    a = load_file(str(tmp_path / "a" / "ckpt-000000004.safetensors"))
    b = load_file(str(tmp_path / "b" / "ckpt-000000004.safetensors"))
    assert a.keys() == b.keys() and "model.joint.out.weight_scale" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    fp32 = load_file(str(init))
    assert not torch.equal(a["model.joint.out.weight"], fp32["model.joint.out.weight"])
    export(CONFIG, tmp_path / "a", tmp_path / "qat.safetensors")
    exported = load_file(str(tmp_path / "qat.safetensors"))
    assert torch.equal(exported["encoder.lstm.weight_ih_l0_scale"],
                       a["model.encoder.lstm.weight_ih_l0_scale"])
    assert exported["encoder.input.act_clip_high"] == a["model.clips.encoder_input.act_clip_high"]
    # the accuracy table takes either the run's checkpoint (exported for it) or the export
    checkpoint = tmp_path / "a" / "ckpt-000000004.safetensors"
    made = qat_export(checkpoint, tmp_path / "work", CONFIG)
    assert made == tmp_path / "work" / "rnnt-qat.export.safetensors"
    again = load_file(str(made))
    assert again.keys() == exported.keys()
    assert all(torch.equal(again[key], exported[key]) for key in exported)
    assert qat_export(tmp_path / "qat.safetensors", tmp_path / "work2", CONFIG) == \
        tmp_path / "qat.safetensors"
    config = load_config(CONFIG)
    model = QAT.build(_qat_options(corpus, tmp_path / "a", init, 4))[1]
    model.load_state_dict({k[len("model."):]: v for k, v in a.items() if k.startswith("model.")})
    dev = load_utterances([corpus / "sets" / "dev-fortunes" / "features"], config.vocab)
    torch.set_num_threads(1)
    result = evaluate(model, dev, config.vocab)      # the engine's greedy search
    assert torch.get_num_threads() == 1              # Numba's OpenMP threads did not leak
    assert 0 <= result["dev_wer"] and " => " in result["dev_example"]
