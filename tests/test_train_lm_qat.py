"""QAT of the character LM (``int4rt_train.lm --qat``, docs/TRAINING.md §5/§6): it trains
through the LM loop, resumes bit for bit, and its export, converted by ``int4rt convert``,
computes the QAT model's integers in the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from int4rt.model.config import load_config  # noqa: E402
from int4rt.model.container import load_model  # noqa: E402
from int4rt.trace import Trace  # noqa: E402
from int4rt_convert import ConvertOptions, QuantOptions, convert  # noqa: E402
from int4rt_train.checkpoint import load_checkpoint  # noqa: E402
from int4rt_train.lm import (  # noqa: E402
    LmOptions,
    bits_per_char,
    build,
    export,
    initial_state,
    main,
    read_sentences,
    train_lm,
)
from int4rt_train.milestone import provenance  # noqa: E402

CONFIG = Path("configs/lm-tiny.json")
WORDS = ("hello", "to", "the", "last", "tea", "hot", "sea", "no", "stone", "la")


@pytest.fixture(scope="module")
def fp32_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Texts and a briefly trained FP32 tiny LM run (``<root>/fp32``)."""
    root = tmp_path_factory.mktemp("lm")
    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice(WORDS[:6], 3)) for _ in range(96)]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "dev.txt").write_text("\n".join(lines[:12]) + "\n")
    train_lm(_options(root, "fp32", qat=False, lr=1e-2, epochs=2))
    return root


def _options(root: Path, run: str, qat: bool = True, **changes: object) -> LmOptions:
    fields: dict = {"text": root / "train.txt", "config": CONFIG, "run": root / run,
                    "dev_text": root / "dev.txt", "batch": 16, "log_every": 1000,
                    "dev_minutes": 1e9, "checkpoint_minutes": 1e9, "qat": qat,
                    "init_from": root / "fp32" if qat else None, "calib_sentences": 32,
                    "lr": 3e-3}
    return LmOptions(**{**fields, **changes})


def test_qat_steps_lower_the_engine_bits_per_char_and_resume_exactly(fp32_lm: Path) -> None:
    opts = _options(fp32_lm, "a", max_steps=6)
    probe = _options(fp32_lm, "probe")
    probe.run.mkdir()
    config, model = build(probe)
    state = initial_state(probe, model, read_sentences(opts.text, config.vocab))
    dev = read_sentences(opts.dev_text, config.vocab)
    before = bits_per_char(model, dev)     # the QAT model at step 0: scaled and calibrated
    assert state["init_from"].endswith("ckpt-000000012.safetensors")
    assert state["init_state"]["step"] == 12
    straight = train_lm(opts)
    train_lm(_options(fp32_lm, "b", max_steps=3))         # interrupted after 3 steps
    resumed = train_lm(_options(fp32_lm, "b", max_steps=6))
    assert straight == resumed
    a = load_file(str(fp32_lm / "a" / "ckpt-000000006.safetensors"))
    b = load_file(str(fp32_lm / "b" / "ckpt-000000006.safetensors"))
    assert a.keys() == b.keys() and "model.out.weight_scale" in a
    assert "model.clips.lm_layer0.act_clip_high" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    load_checkpoint(fp32_lm / "a" / "ckpt-000000006.safetensors", model, None)
    after = bits_per_char(model, dev)
    assert after < before - 0.01, (before, after)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_exported_lm_converted_equals_qat(fp32_lm: Path, tmp_path: Path, rounding: str) -> None:
    """The engine's log-probabilities (and every other ``lm.*`` trace) of the converted export
    equal the QAT model's integers on random sequences: 0 mismatches."""
    data = json.loads(CONFIG.read_text())
    data["quantization"]["rounding"] = rounding
    config_path = tmp_path / "lm.json"
    config_path.write_text(json.dumps(data))
    opts = _options(fp32_lm, f"qat-{rounding}", config=config_path, max_steps=3)
    train_lm(opts)
    output = tmp_path / "qat.safetensors"
    assert main(["--qat", "--config", str(config_path), "--run", str(opts.run),
                 "--export", str(output)]) == 0
    info = provenance(output)
    assert info["step"] == 3 and info["init_state"]["step"] == 12
    converted = tmp_path / "int4.safetensors"
    convert(ConvertOptions(checkpoint=output, config=config_path, output=converted,
                           quant=QuantOptions(cell_scale="config")))
    engine = load_model(converted)
    _, model = build(opts)
    load_checkpoint(export(config_path, opts.run, tmp_path / "again.safetensors"), model, None)
    model.eval()
    torch.manual_seed(5)
    tokens = torch.randint(0, len(load_config(config_path).vocab), (4, 19))
    records = model.integers(tokens)
    compared = mismatched = 0
    for b in range(tokens.shape[0]):
        trace = Trace()
        engine.sequence(tokens[b].numpy(), backend="numpy", trace=trace)
        assert "lm.log_probs" in trace
        for name, expected in trace.items():
            compared += expected.size
            mismatched += int(np.count_nonzero(records[name][b].numpy() != expected))
    assert compared > 10_000
    assert mismatched == 0
    log_probs = model(tokens) * 2.0**load_config(config_path).logit_frac_bits
    assert torch.equal(log_probs.round().long(), records["lm.log_probs"])


def test_qat_needs_init_from_and_export_needs_qat(fp32_lm: Path, capsys) -> None:
    with pytest.raises(SystemExit, match="--init-from"):
        train_lm(_options(fp32_lm, "none", init_from=None, max_steps=1))
    with pytest.raises(SystemExit):
        main(["--config", str(CONFIG), "--run", str(fp32_lm / "a"), "--export", "x"])
    assert "give --qat" in capsys.readouterr().err
