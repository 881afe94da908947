"""Every operator in the registry has a NumPy reference and a Numba twin that agree.

The cases are ``int4rt.selftest.OP_CASES`` on fewer values; an operator without cases, an
export without a case, a missing twin, a differing signature or a differing integer fails.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from int4rt.errors import Int4rtError
from int4rt.ops.registry import BACKENDS, OPS, Backend, backend_fields, get_backend
from int4rt.selftest import OP_CASES, mismatches

OPS_DIR = Path(__file__).resolve().parents[1] / "int4rt" / "ops"


def test_registry_lists_every_operator_folder():
    folders = {p.name for p in OPS_DIR.iterdir() if (p / "reference.py").exists()
               or (p / "numba.py").exists()}
    assert folders == {op.name for op in OPS}
    assert backend_fields() == tuple(op.name for op in OPS)
    assert set(OP_CASES) == {op.name for op in OPS}


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_twins_export_the_same_signatures(op):
    reference, kernel = op.module("numpy"), op.module("numba")
    assert f"§{op.sections.split('§')[1].split(',')[0]}" in reference.__doc__
    for name in op.exports:
        assert inspect.signature(getattr(reference, name)) == inspect.signature(
            getattr(kernel, name)), f"{op.name}.{name}"


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_twins_agree_bit_for_bit(op):
    cases = OP_CASES[op.name](np.random.default_rng(7), 2000)
    assert {case.export for case in cases} == set(op.exports)
    reference, kernel = op.module("numpy"), op.module("numba")
    for case in cases:
        want, got = case.run(reference), case.run(kernel)
        assert mismatches(want, got) == 0, case.description


def test_mismatches_counts_differing_values_and_shapes():
    a = np.array([1, 2, 3])
    assert mismatches(a, np.array([1, 5, 3])) == 1
    assert mismatches((a, a), (a, a[:2])) == 3
    assert mismatches(a, a.astype(np.int16)) == 3


def test_backend_holds_every_operator_module():
    for name in BACKENDS:
        backend = get_backend(name)
        assert isinstance(backend, Backend)
        for op in OPS:
            assert getattr(backend, op.name) is op.module(name)
    with pytest.raises(Int4rtError, match="unknown backend 'cuda'"):
        get_backend("cuda")


def test_selftest_fails_when_a_twin_differs(monkeypatch, capsys):
    from int4rt.ops.log_softmax import numba as log_softmax_numba
    from int4rt.selftest import run_selftest

    real = log_softmax_numba.log_softmax
    monkeypatch.setattr(log_softmax_numba, "log_softmax", lambda *a: real(*a) + 1)
    assert run_selftest(count=1000) == 1
    assert "log_softmax §10: log_softmax 4 rows of 1000 logits, F = 12: 4000 outputs 4000 " \
        "MISMATCHES" in capsys.readouterr().out
