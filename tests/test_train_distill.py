"""Lattice distillation (docs/TRAINING.md §6): the KL term against a brute-force sum over the
valid lattice nodes, its gradient, and a QAT run that uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from int4rt.model.config import load_config  # noqa: E402
from int4rt_train.distill import lattice_kl, load_teacher  # noqa: E402
from int4rt_train.qat import QAT, QatOptions  # noqa: E402
from int4rt_train.train import read_weights, train  # noqa: E402
from tests.test_train_loop import CONFIG, _corpus, _options, _qat_options  # noqa: E402


def _lattices(seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(3, 7, 5, 6, generator=generator).log_softmax(-1)
    student = torch.randn(3, 7, 5, 6, generator=generator).log_softmax(-1)
    return teacher, student, torch.tensor([7, 4, 1]), torch.tensor([4, 0, 2])


def _brute_force(teacher: np.ndarray, student: np.ndarray, frames: list[int],
                 labels: list[int]) -> float:
    values = []
    for b, (count, length) in enumerate(zip(frames, labels, strict=True)):
        for t in range(count):
            for u in range(length + 1):
                p = np.exp(teacher[b, t, u])
                values.append(float(np.sum(p * (teacher[b, t, u] - student[b, t, u]))))
    return sum(values) / len(values)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lattice_kl_is_the_mean_over_valid_nodes(seed: int) -> None:
    teacher, student, frames, labels = _lattices(seed)
    got = lattice_kl(teacher, student, frames, labels).item()
    want = _brute_force(teacher.double().numpy(), student.double().numpy(), frames.tolist(),
                        labels.tolist())
    assert got == pytest.approx(want, rel=1e-5)
    assert got > 0
    assert lattice_kl(teacher, teacher.clone(), frames, labels).item() == 0.0
    padded = student.clone()
    padded[1, 4:] = 0.0                            # past T'_1 = 4
    padded[0, :, 4 + 1:] = 0.0                     # nothing past U_0 = 4 exists: no change
    padded[2, :, 3:] = -50.0                       # past U_2 = 2
    assert lattice_kl(teacher, padded, frames, labels).item() == pytest.approx(got, rel=1e-6)


def test_lattice_kl_gradient_reaches_the_student_only() -> None:
    teacher, student, frames, labels = _lattices(3)
    teacher.requires_grad_(True)
    student.requires_grad_(True)
    lattice_kl(teacher, student, frames, labels).backward()
    assert teacher.grad is None
    valid = ((torch.arange(7)[None, :, None] < frames[:, None, None])
             & (torch.arange(5)[None, None, :] <= labels[:, None, None]))
    want = -teacher.detach().exp() * valid[..., None] / int(valid.sum())
    assert torch.allclose(student.grad, want, atol=1e-7)


def test_qat_run_with_distillation_logs_the_term_and_moves_the_weights(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    train(_options(corpus, tmp_path / "fp32", 1))
    init = tmp_path / "fp32" / "ckpt-000000001.safetensors"
    teacher = read_weights(init)                          # a teacher unlike the start
    teacher["joint.out.bias"] = torch.linspace(-3.0, 3.0, teacher["joint.out.bias"].numel())
    save_file(teacher, str(tmp_path / "teacher.safetensors"))
    train(_qat_options(corpus, tmp_path / "plain", init, 2), QAT)
    distilled = _qat_options(corpus, tmp_path / "kd", init, 2)
    distilled.distill_weight = 5.0
    distilled.distill_from = tmp_path / "teacher.safetensors"
    train(distilled, QAT)
    records = [json.loads(line) for line in (tmp_path / "kd" / "metrics.jsonl").open()]
    steps = [r for r in records if "step" in r and "loss_per_char" in r]
    assert steps and all(r["extra_loss"] > 0.1 for r in steps)
    plain_records = [json.loads(line) for line in (tmp_path / "plain" / "metrics.jsonl").open()]
    assert all("extra_loss" not in r for r in plain_records)
    a = load_file(str(tmp_path / "plain" / "ckpt-000000002.safetensors"))
    b = load_file(str(tmp_path / "kd" / "ckpt-000000002.safetensors"))
    assert not torch.equal(a["model.joint.out.weight"], b["model.joint.out.weight"])


def test_distillation_refuses_a_bad_teacher_or_weight(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    train(_options(corpus, tmp_path / "fp32", 1))
    init = tmp_path / "fp32" / "ckpt-000000001.safetensors"
    train(_qat_options(corpus, tmp_path / "qat", init, 1), QAT)
    qat_checkpoint = tmp_path / "qat" / "ckpt-000000001.safetensors"
    with pytest.raises(SystemExit, match="not an FP32 model of this config"):
        load_teacher(read_weights(qat_checkpoint), load_config(CONFIG), qat_checkpoint)
    options: QatOptions = _qat_options(corpus, tmp_path / "neg", init, 1)
    options.distill_weight = -1.0
    with pytest.raises(SystemExit, match="must be 0 or more"):
        train(options, QAT)
    options = _qat_options(corpus, tmp_path / "missing", init, 1)
    options.distill_weight, options.distill_from = 1.0, tmp_path / "no-teacher.safetensors"
    with pytest.raises(SystemExit, match=r"--distill-from .*no-teacher\.safetensors: no such"):
        train(options, QAT)
