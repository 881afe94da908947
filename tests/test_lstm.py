"""Integer LSTM: NumPy reference, Numba kernels and the naive twin agree (ARITHMETIC.md §8)."""

from __future__ import annotations

import itertools

import naive
import numpy as np
import pytest

import int4rt.ops.lstm.numba as fast
import int4rt.ops.lstm.reference as ref
from int4rt.arith import get_profile
from int4rt.layers import ActQuant, stack_frames
from int4rt.model.random_model import random_lstm_cell
from int4rt.ops.gemv.dispatch import ACTIVE_PATH, layouts_on_path, supported_paths
from int4rt.ops.gemv.reference import linear as reference_linear
from int4rt.quantization import format_covering
from int4rt.trace import Trace

TABLE = get_profile("int4rt").table
COMBOS = list(itertools.product([4, 8], [4, 8], [False, True], ["double", "single"]))


def _formats(bits: int, signed: bool) -> tuple[ActQuant, ActQuant]:
    return (format_covering(bits, signed, -2.0, 2.0), format_covering(bits, signed, -1.0, 1.0))


def _cell(seed: int, weight_bits: int, act_bits: int, signed: bool, *, input_size: int = 13,
          hidden: int = 9, cell_scale_log2: int = -11, cell_clip: int = 0):
    x_fmt, h_fmt = _formats(act_bits, signed)
    cell = random_lstm_cell(np.random.default_rng(seed), input_size, x_fmt, hidden, weight_bits,
                            h_fmt, cell_scale_log2, cell_clip)
    cell.validate("cell")
    return cell


def _inputs(seed: int, fmt: ActQuant, steps: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(fmt.qmin, fmt.qmax, size=(steps, width), endpoint=True)
    x[0] = fmt.qmin
    x[1] = fmt.qmax
    return x.astype(fmt.dtype)


@pytest.mark.parametrize(("weight_bits", "act_bits", "signed", "rounding"), COMBOS)
@pytest.mark.parametrize("reverse", [False, True])
def test_reference_and_kernel_agree_with_traces(weight_bits, act_bits, signed, rounding,
                                                reverse):
    cell = _cell(weight_bits * 10 + act_bits, weight_bits, act_bits, signed)
    x = _inputs(1, cell.input, 23, cell.input_size)
    traces = Trace(), Trace()
    outs = [impl.lstm_sequence(cell, x, TABLE, rounding, reverse=reverse, trace=tr, prefix="l")
            for impl, tr in zip((ref, fast), traces, strict=True)]
    for a, b in zip(*outs, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert list(traces[0]) == list(traces[1]) == [
        "l.input_proj", "l.gate_pre", "l.gate.i", "l.gate.f", "l.gate.g", "l.gate.o", "l.cell",
        "l.hidden",
    ]
    for name in traces[0]:
        assert traces[0][name].dtype == traces[1][name].dtype, name
        np.testing.assert_array_equal(traces[0][name], traces[1][name], err_msg=name)
    hidden = outs[0][0]
    assert hidden.min() >= cell.hidden.qmin and hidden.max() <= cell.hidden.qmax
    assert np.unique(hidden).size > 2, "degenerate random model: hidden codes do not vary"


@pytest.mark.parametrize("path", supported_paths())
@pytest.mark.parametrize(("weight_bits", "act_bits", "signed", "rounding"), COMBOS[::2])
def test_every_kernel_path_equals_reference(path, weight_bits, act_bits, signed, rounding):
    """Each dot-product path this CPU has (§7.4, §7.5: the packed GEMV for 4-bit weights, the
    blocked tiles otherwise) gives the reference's integers; 64 inputs and 70 hidden units
    make odd 32-byte chunk counts and partial 4-row tiles."""
    cell = _cell(weight_bits + act_bits, weight_bits, act_bits, signed, input_size=64 + 13,
                 hidden=70)
    x = _inputs(5, cell.input, 9, cell.input_size)
    want = ref.lstm_sequence(cell, x, TABLE, rounding)
    rng = np.random.default_rng(2)
    h = rng.integers(cell.hidden.qmin, cell.hidden.qmax, size=(3, cell.hidden_size),
                     endpoint=True).astype(cell.hidden.dtype)
    h[0] = cell.hidden.qmax
    c = rng.integers(-32768, 32767, size=(3, cell.hidden_size), endpoint=True).astype(np.int16)
    want_step = ref.lstm_step(cell, x[:3], h, c, TABLE, rounding)
    with layouts_on_path(path):
        got = fast.lstm_sequence(cell, x, TABLE, rounding)
        got_step = fast.lstm_step(cell, x[:3], h, c, TABLE, rounding)
    for a, b in zip((*want, *want_step), (*got, *got_step), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("weight_bits", "act_bits", "signed", "rounding"), COMBOS[::3])
@pytest.mark.parametrize(("cell_scale_log2", "cell_clip"), [(-11, 0), (-15, 0), (-13, 900)])
def test_matches_naive_twin(weight_bits, act_bits, signed, rounding, cell_scale_log2, cell_clip):
    cell = _cell(7, weight_bits, act_bits, signed, input_size=6, hidden=5,
                 cell_scale_log2=cell_scale_log2, cell_clip=cell_clip)
    x = _inputs(3, cell.input, 12, cell.input_size)
    hidden, h_last, c_last = ref.lstm_sequence(cell, x, TABLE, rounding)
    h = [cell.hidden.zero_point] * 5
    c = [0] * 5
    for t in range(x.shape[0]):
        h, c = naive.lstm_step(cell, [int(v) for v in x[t]], h, c, TABLE, rounding)
        assert hidden[t].tolist() == h, t
    assert h_last.tolist() == h and c_last.tolist() == c


def test_cell_clip_bounds_the_cell_state():
    cell = _cell(5, 8, 8, True, cell_clip=300)
    trace = Trace()
    ref.lstm_sequence(cell, _inputs(2, cell.input, 40, cell.input_size), TABLE, "double",
                      trace=trace, prefix="l")
    assert np.abs(trace["l.cell"]).max() == 300


@pytest.mark.parametrize("impl", [ref, fast])
def test_step_batch_equals_sequence(impl):
    """lstm_step over a batch of rows = lstm_sequence on each row's sequence."""
    cell = _cell(11, 4, 4, False)
    xs = [_inputs(seed, cell.input, 6, cell.input_size) for seed in range(3)]
    h = np.full((3, cell.hidden_size), cell.hidden.zero_point, cell.hidden.dtype)
    c = np.zeros((3, cell.hidden_size), np.int16)
    for t in range(6):
        h, c = impl.lstm_step(cell, np.stack([x[t] for x in xs]), h, c, TABLE, "double")
    for b, x in enumerate(xs):
        _, h_last, c_last = impl.lstm_sequence(cell, x, TABLE, "double")
        np.testing.assert_array_equal(h[b], h_last)
        np.testing.assert_array_equal(c[b], c_last)


def test_reverse_is_forward_on_reversed_input():
    cell = _cell(13, 8, 4, True)
    x = _inputs(4, cell.input, 15, cell.input_size)
    backward = ref.lstm_sequence(cell, x, TABLE, "double", reverse=True)[0]
    forward = ref.lstm_sequence(cell, x[::-1].copy(), TABLE, "double")[0]
    np.testing.assert_array_equal(backward, forward[::-1])


def test_tracks_a_float_lstm():
    """int8 codes follow a float LSTM with the dequantized weights (independent semantics)."""
    cell = _cell(17, 8, 8, True, input_size=10, hidden=12, cell_scale_log2=-12)
    x = _inputs(5, cell.input, 30, cell.input_size)
    hidden = ref.lstm_sequence(cell, x, TABLE, "double")[0]
    xs = (x.astype(np.float64) - cell.input.zero_point) * cell.input.scale
    wx = cell.input_fc.weight * (_real(cell.input_fc) / cell.input.scale)[:, None]
    wh = cell.recurrent_fc.weight * (_real(cell.recurrent_fc) / cell.hidden.scale)[:, None]
    b = cell.input_fc.bias * _real(cell.input_fc)
    hf = np.zeros(cell.hidden_size)
    cf = np.zeros(cell.hidden_size)
    errors = []
    for t in range(x.shape[0]):
        z = wx @ xs[t] + wh @ hf + b
        i, f, g, o = np.split(z, 4)
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        cf = sig(f) * cf + sig(i) * np.tanh(g)
        hf = sig(o) * np.tanh(cf)
        got = (hidden[t].astype(np.float64) - cell.hidden.zero_point) * cell.hidden.scale
        errors.append(np.abs(got - hf).max())
        hf = got  # follow the integer trajectory, measure one step's error
    assert max(errors) < 3 * cell.hidden.scale


def _real(layer) -> np.ndarray:
    """Per-row real scale M·2^(s−31) of a layer's requantization, times 2^-12 (Q3.12 out)."""
    return layer.multiplier.astype(np.float64) * 2.0 ** (layer.shift - 31.0) * 2.0**-12


def test_stack_frames_pads_with_zero_point():
    x = np.arange(10, dtype=np.int8).reshape(5, 2)
    stacked = stack_frames(x, 2, -3)
    assert stacked.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, -3, -3]]
    assert stack_frames(x, 1, 0) is x


def test_recurrent_params_are_kept_per_rounding():
    """The packed §7.5 weights (where the path has them) for any number of rows, built once
    per cell and rounding."""
    cell = _cell(11, 4, 4, False)
    params = fast.recurrent_params(cell, "double")
    assert fast.recurrent_params(cell, "double") is params
    assert fast.recurrent_params(cell, "single") is not params
    expected_rows = 0 if ACTIVE_PATH == "portable" else 4 * cell.hidden_size
    assert params.packed.shape[0] == expected_rows


@pytest.mark.parametrize("path", supported_paths())
@pytest.mark.parametrize(("weight_bits", "act_bits", "signed", "rounding"), COMBOS[::3])
@pytest.mark.parametrize("rows", [1, 2, 3, 5])
@pytest.mark.parametrize("fill", ["random", "max", "min"])
def test_trusted_step_equals_reference(path, weight_bits, act_bits, signed, rounding, rows,
                                       fill):
    """The search's one-kernel step (input and recurrent products on the offset nibbles of
    §7.5 for 4-bit weights, any batch; the blocked tiles of §7.4 otherwise) gives the NumPy
    reference's integers, with every code and cell at an extreme too (saturating the gate
    pre-activations and the cell); 77 inputs and 70 hidden units make odd chunk counts and
    partial tiles."""
    cell = _cell(rows + weight_bits + act_bits, weight_bits, act_bits, signed, input_size=77,
                 hidden=70)
    rng = np.random.default_rng(rows)
    x = rng.integers(cell.input.qmin, cell.input.qmax, size=(rows, cell.input_size),
                     endpoint=True).astype(cell.input.dtype)
    h = rng.integers(cell.hidden.qmin, cell.hidden.qmax, size=(rows, cell.hidden_size),
                     endpoint=True).astype(cell.hidden.dtype)
    c = rng.integers(-32768, 32767, size=(rows, cell.hidden_size),
                     endpoint=True).astype(np.int16)
    if fill != "random":
        x[:] = cell.input.qmax if fill == "max" else cell.input.qmin
        h[:] = cell.hidden.qmax if fill == "max" else cell.hidden.qmin
        c[:] = 32767 if fill == "max" else -32768
    want_h, want_c = ref.lstm_step(cell, x, h, c, TABLE, rounding)
    h_trusted, c_trusted = h.astype(np.int16), c.copy()
    with layouts_on_path(path):
        plan = fast.step_plan(cell, rounding, TABLE)
    assert (plan.input_packed.shape[0] > 0) == (weight_bits == 4 and path != "portable")
    assert fast.lstm_step_trusted(plan, x, h_trusted, c_trusted) is None
    np.testing.assert_array_equal(h_trusted, want_h)
    np.testing.assert_array_equal(c_trusted, want_c)


STACK_TOKENS, STACK_PARENTS, STACK_SLOTS = np.array([3, 0, 8, 3]), np.array([2, 2, 5, 0]), \
    np.array([2, 4, 1, 5])
"""A batch of four rows over six slots: slots that are their own and other rows' parents."""


def stack_case(weight_bits: int, act_bits: int, signed: bool, fill: str):
    """Two validated layers of different widths (77 → 70 → 40), a 9-token embedding and
    pools of six slots, random or with every code and cell at an extreme (``fill`` "max" or
    "min"): (cells, hidden format, embedding, h pools, c pools)."""
    x_fmt, h_fmt = _formats(act_bits, signed)
    rng = np.random.default_rng(weight_bits * 10 + act_bits)
    cells = (random_lstm_cell(rng, 77, x_fmt, 70, weight_bits, h_fmt, -11, 0),
             random_lstm_cell(rng, 70, h_fmt, 40, weight_bits, h_fmt, -11, 0))
    for index, cell in enumerate(cells):
        cell.validate(f"layer{index}")
    embedding = rng.integers(x_fmt.qmin, x_fmt.qmax, size=(9, 77),
                             endpoint=True).astype(x_fmt.dtype)
    h_pools = tuple(rng.integers(h_fmt.qmin, h_fmt.qmax, size=(6, cell.hidden_size),
                                 endpoint=True).astype(np.int16) for cell in cells)
    c_pools = tuple(rng.integers(-32768, 32767, size=(6, cell.hidden_size),
                                 endpoint=True).astype(np.int16) for cell in cells)
    if fill != "random":
        embedding[:] = x_fmt.qmax if fill == "max" else x_fmt.qmin
        for h_pool, c_pool in zip(h_pools, c_pools, strict=True):
            h_pool[:] = h_fmt.qmax if fill == "max" else h_fmt.qmin
            c_pool[:] = 32767 if fill == "max" else -32768
    return cells, h_fmt, embedding, h_pools, c_pools


@pytest.mark.parametrize("path", supported_paths())
@pytest.mark.parametrize(("weight_bits", "act_bits", "signed", "rounding"), COMBOS[::3])
@pytest.mark.parametrize("fill", ["random", "max", "min"])
def test_stack_step_slots_equals_reference(path, weight_bits, act_bits, signed, rounding, fill):
    """The search's one kernel per stack and evaluate call (the first layer's input product
    looked up per token in ``token_inputs``, every layer, gather from and scatter to slots)
    gives the NumPy reference's integers: two layers of different widths, slots that are their
    own and other rows' parents, every code and cell at an extreme too; the token table is the
    reference product of the embedding rows."""
    cells, h_fmt, embedding, h_pools, c_pools = stack_case(weight_bits, act_bits, signed, fill)
    tokens, parents, slots = STACK_TOKENS, STACK_PARENTS, STACK_SLOTS
    want_h = tuple(h_pool.astype(h_fmt.dtype) for h_pool in h_pools)
    want_c = tuple(c_pool.copy() for c_pool in c_pools)
    want = ref.stack_step_slots(cells, embedding, tokens, parents, slots, want_h, want_c, TABLE,
                                rounding)
    with layouts_on_path(path):
        plans = tuple(fast.step_plan(cell, rounding, TABLE) for cell in cells)
        first_inputs = fast.token_inputs(cells[0], rounding, embedding)
    np.testing.assert_array_equal(
        first_inputs, reference_linear(embedding, cells[0].input_fc, cells[0].input, rounding,
                                       np.int16))
    out = np.empty((tokens.size, cells[-1].hidden_size), dtype=np.int16)
    fast.stack_step_slots(plans, first_inputs, tokens, parents, slots, h_pools, c_pools, out)
    np.testing.assert_array_equal(out, want)
    for got_pools, want_pools in ((h_pools, want_h), (c_pools, want_c)):
        for got_pool, want_pool in zip(got_pools, want_pools, strict=True):
            np.testing.assert_array_equal(got_pool, want_pool)
