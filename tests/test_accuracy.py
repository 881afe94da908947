"""The accuracy runner (int4rt_train.accuracy): table arithmetic, the FP32 search adapter
against the converter's float model, fusion weights chosen on dev only, one whole run on
tiny random models.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from safetensors.numpy import save_file

from int4rt.decode import DecodeOptions, search
from int4rt.manifests import Item
from int4rt.model.config import load_config
from int4rt_convert.layout import expected_tensors
from int4rt_train import accuracy
from int4rt_train.accuracy_table import BEGIN, END, Point, Scoreboard, replace_block, set_table
from int4rt_train.float_search import FLOAT_FRAC_BITS, load_float
from int4rt_train.fusion_tuning import tune
from int4rt_train.peer_pocketsphinx import to_charset

CONFIGS = Path(__file__).parents[1] / "configs"
UNIT = 2.0 ** -FLOAT_FRAC_BITS


def random_checkpoint(config: str, path: Path, seed: int) -> Path:
    """Float tensors of every required reference name (plus CMVN), N(0, 0.5²)."""
    cfg = load_config(CONFIGS / f"{config}.json")
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, spec in expected_tensors(cfg).items():
        if name == "frontend.cmvn_mean":
            tensors[name] = np.full(spec.shape, -2.0, np.float32)
        elif name == "frontend.cmvn_std":
            tensors[name] = np.full(spec.shape, 3.0, np.float32)
        elif spec.required or name.endswith("bias_ih"):
            tensors[name] = (0.5 * rng.standard_normal(spec.shape)).astype(np.float32)
    save_file(tensors, str(path))
    return path


# --- table arithmetic ---------------------------------------------------------------------


def test_scoreboard_sums_errors_before_dividing():
    board = Scoreboard()
    point = Point("INT4 PTQ", "none", 4)
    board.add("set", point, "A b, c!", "a x c")  # 1 of 3 words; chars "a b c": 1 of 5
    board.add("set", point, "hello world", "")  # 2 of 2 words; 11 of 11 characters
    tally = board.get("set", point)
    assert (tally.word_errors, tally.words, tally.char_errors, tally.chars) == (3, 5, 12, 16)
    assert tally.wer == pytest.approx(0.6)  # a mean of per-utterance rates would be 2/3
    assert tally.cer == pytest.approx(0.75)
    assert tally.utterances == 2
    assert board.get("set", Point("FP32", "none", 4)) is None
    assert math.isnan(Scoreboard().tallies.get("x", {}).get("y", type(tally)()).wer)


def test_set_table_rows_and_missing_cells():
    board = Scoreboard()
    board.add("s", Point("FP32", "none", 1), "a b", "a b")
    board.add("s", Point("FP32", "none", 4), "a b", "a")
    board.add("s", Point("FP32", "shallow", 1), "a b", "c d e")
    lines = set_table(board, "s", ["FP32", "INT8 PTQ"], [1, 4])
    assert lines[0] == "| system | LM | WER b1 | WER b4 | CER b1 | CER b4 |"
    assert lines[2] == "| FP32 | none | 0.00 | 50.00 | 0.00 | 66.67 |"
    assert lines[3] == "| FP32 | shallow | 150.00 | n/a | 133.33 | n/a |"  # LCS " ": 4 edits
    assert lines[4:] == [""]  # no INT8 rows, no density-ratio row


def test_replace_block_appends_then_replaces():
    first = replace_block("# Results\n\ntext\n", "one\n", "## Accuracy")
    assert first == f"# Results\n\ntext\n\n## Accuracy\n\n{BEGIN}\none\n{END}\n"
    second = replace_block(first + "after\n", "two", "## Accuracy")
    assert second == f"# Results\n\ntext\n\n## Accuracy\n\n{BEGIN}\ntwo\n{END}\nafter\n"


def test_peer_text_is_reduced_to_the_charset():
    vocab = ("<blk>", " ", "'", "a", "b", "c", "d", "o", "n", "t")
    assert to_charset("Don't  BAD-cat <sil> 42", vocab) == "don't bad cat"


# --- the FP32 search adapter --------------------------------------------------------------


@pytest.fixture(scope="module")
def float_models(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("float")
    rnnt = load_float(random_checkpoint("tiny", root / "rnnt.safetensors", 3),
                      CONFIGS / "tiny.json")
    lm = load_float(random_checkpoint("lm-tiny", root / "lm.safetensors", 4),
                    CONFIGS / "lm-tiny.json")
    return rnnt, lm


def test_adapter_log_probs_equal_the_converter_float_model(float_models):
    rnnt, _ = float_models
    features = np.random.default_rng(5).normal(0.0, 2.0, (23, 120)).astype(np.float32)
    enc = rnnt.encode_features(features)
    histories = [[3, 5, 1, 4], [7, 7, 2, 9]]
    expected = [rnnt.fmodel.joint(enc, rnnt.fmodel.predict(labels)) for labels in histories]
    state = rnnt.predictor_initial_state(2)
    pred, state = rnnt.predictor_step(np.array([0, 0]), state)  # the blank start
    for step in range(len(histories[0]) + 1):
        for frame in (0, len(enc) // 2, len(enc) - 1):
            got = rnnt.joint_log_probs(np.repeat(enc[frame:frame + 1], 2, axis=0),
                                       rnnt.project_predictor(pred))
            assert got.dtype == np.int32
            for row in range(2):
                want = expected[row][frame, step]
                np.testing.assert_allclose(got[row] * UNIT, want, atol=UNIT / 2 + 1e-6)
        if step < len(histories[0]):
            tokens = np.array([labels[step] for labels in histories])
            pred, state = rnnt.predictor_step(tokens, state)


def test_adapter_lm_steps_equal_the_converter_float_lm(float_models):
    _, lm = float_models
    histories = [[4, 1, 6, 8, 3], [10, 10, 2, 1, 5]]
    state = lm.initial_state(2)
    tokens = np.array([0, 0])
    for step in range(len(histories[0]) + 1):
        got, state = lm.step(tokens, state)
        for row, labels in enumerate(histories):
            want = lm.fmodel.log_probs(labels)[step]
            np.testing.assert_allclose(got[row] * UNIT, want, atol=UNIT / 2 + 1e-6)
        if step < len(histories[0]):
            tokens = np.array([labels[step] for labels in histories])


def test_int4rt_greedy_search_on_floats_matches_the_converter_greedy(float_models):
    rnnt, lm = float_models
    rng = np.random.default_rng(6)
    labelled = 0
    for _ in range(3):
        enc = rnnt.encode_features(rng.normal(0.0, 2.0, (40, 120)).astype(np.float32))
        result = search(rnnt, enc, DecodeOptions("greedy", max_symbols_per_frame=3),
                        backend="numpy")
        assert result.tokens == rnnt.fmodel.greedy_labels(enc, max_symbols=3)
        assert result.frac_bits == FLOAT_FRAC_BITS
        fused = search(rnnt, enc, DecodeOptions("beam", beam=3, lm_weight=0.5,
                                                source_lm_weight=0.25), lm=lm, source_lm=lm,
                       backend="numpy")
        labelled += bool(fused.tokens)
        # the LM terms are λ · the float LM's log-probabilities of the labels (history from
        # the sentence start), to a rounding of at most one unit per label
        lm_sum = sum(lm.fmodel.log_probs(fused.tokens)[np.arange(len(fused.tokens)),
                                                        fused.tokens]) / UNIT
        assert abs(fused.components["ext"] - 0.5 * lm_sum) <= len(fused.tokens) + 1
        assert abs(fused.components["src"] + 0.25 * lm_sum) <= len(fused.tokens) + 1
    assert labelled


# --- fusion weights -------------------------------------------------------------------------


def test_fusion_weights_come_from_the_dev_items_only():
    dev = [Item("d1.wav", "d1.wav", "a b c d", "d1"), Item("d2.wav", "d2.wav", "e f", "d2")]
    test = [Item("t1.wav", "t1.wav", "x y", "t1")]
    # dev errors per (mode, λ, μ): words wrong in d1 ("a b c d") and d2 ("e f")
    wrong = {("shallow", 0.1, 0.0): (2, 1), ("shallow", 0.3, 0.0): (1, 0),
             ("density_ratio", 0.1, 0.2): (0, 1), ("density_ratio", 0.1, 0.4): (1, 1),
             ("density_ratio", 0.3, 0.2): (1, 0), ("density_ratio", 0.3, 0.4): (0, 0)}
    seen = []

    def decode(item, mode, lm_weight, source_weight):
        seen.append(item.key)
        errors = wrong[(mode, lm_weight, source_weight)][0 if item.key == "d1" else 1]
        words = (item.reference or "").split()
        return " ".join(["zz"] * errors + words[errors:])

    choice = tune(decode, dev, (0.1, 0.3), (0.2, 0.4), with_source=True)
    assert set(seen) == {"d1", "d2"} and not {i.key for i in test} & set(seen)
    assert choice.shallow == 0.3  # 1/6 against 3/6
    assert choice.density_ratio == (0.3, 0.4)  # 0/6
    assert [round(wer, 4) for *_, wer in choice.points] == [0.5, 0.1667, 0.1667, 0.3333,
                                                           0.1667, 0.0]
    # ties go to the first point in grid order
    tie = tune(lambda item, *_: item.reference, dev, (0.1, 0.3), (0.2,), with_source=False)
    assert (tie.shallow, tie.density_ratio) == (0.1, None)


# --- one whole run --------------------------------------------------------------------------


def _write_set(root: Path, name: str, texts: list[str], rng: np.random.Generator) -> None:
    folder = root / "sets" / name
    (folder / "wav").mkdir(parents=True)
    lines = []
    for index, text in enumerate(texts):
        audio = f"wav/{name}-{index:05d}.wav"
        sf.write(folder / audio, 0.3 * rng.standard_normal(2400 + 400 * index), 8000)
        lines.append(json.dumps({"audio": audio, "id": f"{name}-{index:05d}", "text": text}))
    (folder / "manifest.jsonl").write_text("\n".join(reversed(lines)) + "\n")


def test_whole_run_on_tiny_random_models(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    corpus = tmp_path / "corpus"
    for name, texts in (("dev-fortunes", ["the sea", "hello", "a tale"]),
                        ("dev-bible", ["lo", "the oath", "east", "no"]),
                        ("test-a", ["the host", "a son", "tea"])):
        _write_set(corpus, name, texts, rng)
    (corpus / "text").mkdir()
    (corpus / "text" / "bible-dev.txt").write_text("he hath seen the east\na tale to tell\n")
    (corpus / "text" / "fortunes-dev.txt").write_text("ten salt teas\nhello to all\n")
    tuned = []
    monkeypatch.setattr(accuracy, "tune", lambda decode, items, *a, **k: (
        tuned.append([item.key for item in items]), tune(decode, items, *a, **k))[1])
    methods = set()
    monkeypatch.setattr(accuracy, "search", lambda model, enc, options, **k: (
        methods.add(options.method), search(model, enc, options, **k))[1])
    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n\nkept\n")
    status = accuracy.main([
        "--model-fp32", str(random_checkpoint("tiny", tmp_path / "m.safetensors", 1)),
        "--config", str(CONFIGS / "tiny.json"), "--lm-config", str(CONFIGS / "lm-tiny.json"),
        "--lm-external", str(random_checkpoint("lm-tiny", tmp_path / "e.safetensors", 2)),
        "--lm-source", str(random_checkpoint("lm-tiny", tmp_path / "s.safetensors", 3)),
        "--corpus", str(corpus), "--sets", "test-a", "--limit", "2", "--tune-limit", "3",
        "--lm-weights", "0.1,0.3", "--source-weights", "0.2", "--beams", "1,2",
        "--systems", "fp32,int4", "--work", str(tmp_path / "work"), "--out", str(out)])
    assert status == 0
    # int4rt manifests key items by audio path; the corpus names each file by its id
    assert tuned == [[f"wav/dev-bible-{i:05d}.wav" for i in range(3)]] * 2
    text = out.read_text()
    assert text.startswith("# Results\n\nkept\n") and BEGIN in text and END in text
    for system in ("FP32", "INT4 PTQ"):
        for mode in ("none", "shallow", "density ratio"):
            assert f"| {system} | {mode} |" in text
    assert "**test-a** (2 utterances)" in text
    assert methods == {"alsd"} and "alignment-length synchronous decoding (ALSD)" in text
    saved = json.loads((tmp_path / "work" / "accuracy.json").read_text())
    first, second = "wav/test-a-00000.wav", "wav/test-a-00001.wav"
    assert sorted(saved["hypotheses"]["test-a"]) == [first, second]
    assert len(saved["hypotheses"]["test-a"][first]) == 2 * 3 * 2


def _small_run(tmp_path: Path, rng: np.random.Generator, test_texts: list[str]) -> list[str]:
    """A tiny corpus with one test set ``test-a``; the arguments every run below shares."""
    corpus = tmp_path / "corpus"
    for name, texts in (("dev-fortunes", ["the sea", "hello"]), ("dev-bible", ["lo", "east"]),
                        ("test-a", test_texts)):
        _write_set(corpus, name, texts, rng)
    (corpus / "text").mkdir()
    (corpus / "text" / "bible-dev.txt").write_text("he hath seen the east\n")
    return ["--model-fp32", str(random_checkpoint("tiny", tmp_path / "m.safetensors", 1)),
            "--config", str(CONFIGS / "tiny.json"), "--lm-config", str(CONFIGS / "lm-tiny.json"),
            "--lm-external", str(random_checkpoint("lm-tiny", tmp_path / "e.safetensors", 2)),
            "--corpus", str(corpus), "--sets", "test-a", "--tune-limit", "2",
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "RESULTS.md")]


def test_int4_qat_rows_from_a_file_converted_before(tmp_path):
    work, out = tmp_path / "work", tmp_path / "RESULTS.md"
    common = [*_small_run(tmp_path, np.random.default_rng(8), ["the host", "a son"]),
              "--beams", "1,2"]
    assert accuracy.main([*common, "--systems", "int4"]) == 0
    ptq = work / "rnnt-int4.safetensors"
    assert accuracy.main([*common, "--reuse", "--systems", "int4,int4-qat",
                          "--int4-qat-model", str(ptq)]) == 0
    text = out.read_text()
    # the same file decoded twice: the QAT row repeats the PTQ row cell for cell
    ptq_row = re.search(r"\| INT4 PTQ \| none \|(.*)\|", text).group(1)
    assert re.search(r"\| INT4 QAT \| none \|(.*)\|", text).group(1) == ptq_row
    digest = hashlib.sha256(ptq.read_bytes()).hexdigest()
    assert f"converted before: {ptq} (sha256 {digest})" in text
    assert f"| INT4 QAT | {ptq.stat().st_size:,} |" in text
    with pytest.raises(SystemExit, match="8-bit weights"):
        accuracy.converted_before(work / "rnnt-int8.safetensors")
    with pytest.raises(SystemExit, match="not an RNN-T"):
        accuracy.converted_before(work / "lm-ext-int4.safetensors")
    with pytest.raises(SystemExit, match="no such int4rt model file"):
        accuracy.converted_before(tmp_path / "missing.safetensors")
    with pytest.raises(SystemExit):
        accuracy.parser().parse_args(["--model-fp32", "m", "--out", "o", "--model-qat", "q",
                                      "--int4-qat-model", "q4"])


class FakePeer:
    """Stands in for pocketsphinx: the hypothesis is the audio file's name, counted per call."""

    calls = 0

    def __init__(self, vocab: tuple[str, ...]) -> None:
        self.name = "fake-peer 1.0"

    def transcribe(self, path: str) -> str:
        FakePeer.calls += 1
        return "the " + Path(path).stem.rsplit("-", 1)[1][-1]


def test_peer_rows_are_reused_only_for_the_same_audio(tmp_path, monkeypatch, capsys):
    from int4rt_train import peer_pocketsphinx

    monkeypatch.setattr(peer_pocketsphinx, "PocketSphinx", FakePeer)
    monkeypatch.setattr(FakePeer, "calls", 0)
    rng = np.random.default_rng(9)
    corpus, work, out = tmp_path / "corpus", tmp_path / "work", tmp_path / "RESULTS.md"
    common = [*_small_run(tmp_path, rng, ["the 0", "the x", "the 2"]),
              "--beams", "1", "--systems", "int4"]
    # references "the 0", "the x", "the 2" against "the 0", "the 1", "the 2": 1 word of 6,
    # 1 character of 15
    peer_row = "| test-a | 3 | 16.67 | 6.67 |"
    assert accuracy.main([*common, "--peer"]) == 0
    assert FakePeer.calls == 3 and peer_row in out.read_text()
    record_path = tmp_path / "peer.json"
    record_path.write_bytes((work / "pocketsphinx.json").read_bytes())
    record = json.loads(record_path.read_text())
    assert record["peer"] == "fake-peer 1.0"
    assert record["hypotheses"]["test-a"]["wav/test-a-00001.wav"] == "the 1"
    wav = corpus / "sets" / "test-a" / "wav" / "test-a-00001.wav"
    assert (record["audio_sha256"]["test-a"]["wav/test-a-00001.wav"]
            == hashlib.sha256(wav.read_bytes()).hexdigest())

    assert accuracy.main([*common, "--reuse", "--peer-from", str(record_path)]) == 0
    text = out.read_text()
    assert FakePeer.calls == 3 and peer_row in text
    assert f"reused from `{record_path}`" in text and "fake-peer 1.0" in text
    # fewer utterances than the record holds are fine
    assert accuracy.main([*common, "--reuse", "--limit", "2", "--peer-from",
                          str(record_path)]) == 0
    assert "| test-a | 2 | 25.00 | 10.00 |" in out.read_text()

    alone = tmp_path / "alone.json"
    assert peer_pocketsphinx.main(["--corpus", str(corpus), "--sets", "test-a", "--config",
                                   str(CONFIGS / "tiny.json"), "--hypotheses", str(alone)]) == 0
    printed = capsys.readouterr().out
    assert '{"set": "test-a", "utterances": 3, "wer": 16.67, "cer": 6.67}' in printed
    written = json.loads(alone.read_text())
    assert (written["hypotheses"], written["audio_sha256"]) == (
        record["hypotheses"], record["audio_sha256"])

    items = {"test-a": accuracy.first_items(corpus / "sets" / "test-a" / "manifest.jsonl", None)}
    with pytest.raises(SystemExit, match="no such file"):
        peer_pocketsphinx.reused_record(tmp_path / "missing.json", items)
    for bad in ('{"hypotheses": {}}', json.dumps({"format": peer_pocketsphinx.RECORD_FORMAT}),
                "[1, 2]", "not json"):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(SystemExit, match="is not a peer record"):
            peer_pocketsphinx.reused_record(tmp_path / "bad.json", items)
    with pytest.raises(SystemExit, match="has no set test-b"):
        peer_pocketsphinx.reused_record(record_path, {"test-b": items["test-a"]})
    del record["hypotheses"]["test-a"]["wav/test-a-00002.wav"]
    record_path.write_text(json.dumps(record))
    missing = re.escape("no hypothesis for test-a wav/test-a-00002.wav")
    with pytest.raises(SystemExit, match=missing):
        peer_pocketsphinx.reused_record(record_path, items)
    sf.write(wav, 0.1 * rng.standard_normal(2800), 8000)
    with pytest.raises(SystemExit, match=re.escape("test-a-00001.wav changed since")):
        peer_pocketsphinx.reused_record(record_path, items)
    with pytest.raises(SystemExit):
        accuracy.parser().parse_args(["--model-fp32", "m", "--out", "o", "--peer",
                                      "--peer-from", "p"])


def test_reuse_only_a_conversion_of_the_same_command_and_checkpoint(tmp_path, monkeypatch):
    calls = []

    def fake_convert(argv, log):
        calls.append(argv)
        out = Path(argv[argv.index("-o") + 1])
        out.write_text("model")
        out.with_name(out.stem + ".report.json").write_text("{}")
        log.with_suffix(".command").write_text(accuracy.shlex.join(argv))

    monkeypatch.setattr(accuracy, "int4rt_convert", fake_convert)
    checkpoint, calib = tmp_path / "c.safetensors", tmp_path / "calib.jsonl"
    checkpoint.write_text("weights")
    out = tmp_path / "m.safetensors"
    accuracy.convert(checkpoint, Path("tiny.json"), out, calib, 8, reuse=True)
    accuracy.convert(checkpoint, Path("tiny.json"), out, calib, 8, reuse=True)
    assert len(calls) == 1
    accuracy.convert(checkpoint, Path("tiny.json"), out, calib, 4, reuse=True)  # other bits
    accuracy.convert(checkpoint, Path("tiny.json"), out, calib, 8, reuse=False)
    assert len(calls) == 3
    stamp = out.stat().st_mtime + 10
    os.utime(checkpoint, (stamp, stamp))  # a newer checkpoint
    accuracy.convert(checkpoint, Path("tiny.json"), out, calib, 8, reuse=True)
    assert len(calls) == 4


def test_training_checkpoints_are_reduced_to_model_tensors(tmp_path):
    weights = {"model.out.weight": np.ones((2, 3), np.float32),
               "optim.0.exp_avg": np.zeros(3, np.float32), "rng.torch": np.zeros(4, np.uint8)}
    source = tmp_path / "ckpt-000000010.safetensors"
    save_file(weights, str(source))
    plain = accuracy.plain_checkpoint(source, tmp_path, "lm-ext")
    assert plain == tmp_path / "lm-ext.model.safetensors"
    assert list(accuracy.load_file(str(plain))) == ["out.weight"]
    written = plain.stat().st_mtime_ns
    assert accuracy.plain_checkpoint(source, tmp_path, "lm-ext") == plain  # kept
    assert plain.stat().st_mtime_ns == written
    other = tmp_path / "ckpt-000000005.safetensors"  # another file: converted anew
    save_file({"model.out.weight": np.zeros((2, 3), np.float32)}, str(other))
    accuracy.plain_checkpoint(other, tmp_path, "lm-ext")
    assert accuracy.load_file(str(plain))["out.weight"].sum() == 0
    bare = tmp_path / "bare.safetensors"
    save_file({"out.weight": np.ones((2, 3), np.float32)}, str(bare))
    assert accuracy.plain_checkpoint(bare, tmp_path, "rnnt-fp32") == bare


def test_milestone_folders_are_merged_and_bad_paths_named(tmp_path):
    folder = tmp_path / "lm-bible"
    folder.mkdir()
    save_file({"a.weight": np.ones((2, 3), np.float32)}, str(folder / "part-00.safetensors"))
    save_file({"b.bias": np.full(3, 2.0, np.float32)}, str(folder / "part-01.safetensors"))
    (folder / "milestone.json").write_text(json.dumps(
        {"step": 5, "parts": ["part-00.safetensors", "part-01.safetensors"]}))
    plain = accuracy.plain_checkpoint(folder, tmp_path, "lm-ext")
    merged = accuracy.load_file(str(plain))
    assert sorted(merged) == ["a.weight", "b.bias"] and merged["b.bias"].sum() == 6.0
    written = plain.stat().st_mtime_ns
    assert accuracy.plain_checkpoint(folder, tmp_path, "lm-ext") == plain  # kept
    assert plain.stat().st_mtime_ns == written
    with pytest.raises(SystemExit, match=r"without milestone\.json"):
        accuracy.plain_checkpoint(tmp_path / "lm-bible" / "..", tmp_path, "lm-src")
    with pytest.raises(SystemExit, match="no such checkpoint"):
        accuracy.plain_checkpoint(tmp_path / "missing.safetensors", tmp_path, "lm-src")


@pytest.mark.parametrize("qat", [False, True])
def test_a_qat_checkpoint_keeps_the_config_cell_scale(tmp_path, monkeypatch, qat):
    commands = []
    monkeypatch.setattr(accuracy, "int4rt_convert", lambda argv, log: commands.append(argv))
    with pytest.raises(FileNotFoundError):  # the stubbed converter writes no report
        accuracy.convert(tmp_path / "c.safetensors", tmp_path / "small.json",
                         tmp_path / "o.safetensors", tmp_path / "calib.jsonl", 4, False, qat=qat)
    argv = commands[0]
    assert ("--cell-scale" in argv) is qat
    if qat:
        assert argv[argv.index("--cell-scale") + 1] == "config"
    assert argv[argv.index("--calib") + 1] == str(tmp_path / "calib.jsonl")
