"""cocotb tests of the int4rt reference datapath (hardware/rtl) against exported vectors.

Every test reads ``$readmemh`` files written by ``int4rt golden export`` or ``int4rt trace``
(through :mod:`tb_files`, no int4rt import), drives the units of ``int4rt_rtl_top`` and
compares every output with tolerance zero. Directories come from environment variables
(set by ``hardware/run_rtl.py``): ``INT4RT_TB_REQUANT`` (set ``arith_requantize``),
``INT4RT_TB_ACT`` (``arith_activations``), ``INT4RT_TB_FC`` (``arith_fully_connected``) and
``INT4RT_TB_LSTM`` (``os.pathsep``-separated ``lstm_*`` sets and ``int4rt trace`` outputs).
Counts go to the JSON file ``INT4RT_TB_REPORT``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from tb_files import Export

LANES = 16
INT16 = (-32768, 32767)
INT32 = (-(1 << 31), (1 << 31) - 1)
COUNTS: dict[str, dict[str, int]] = {}


def pack(values, bits: int) -> int:
    """Lane l of ``values`` at bits [bits·l, bits·(l+1)), two's complement."""
    word, mask = 0, (1 << bits) - 1
    for lane, value in enumerate(values):
        word |= (int(value) & mask) << (bits * lane)
    return word


def unpack(word: int, bits: int, lanes: int, signed: bool = True) -> list[int]:
    """The inverse of :func:`pack` for ``lanes`` lanes."""
    mask, out = (1 << bits) - 1, []
    for lane in range(lanes):
        value = (word >> (bits * lane)) & mask
        if signed and value >> (bits - 1):
            value -= 1 << bits
        out.append(value)
    return out


class Tally:
    """Compared and mismatching values of one test; the first mismatch is kept."""

    def __init__(self, name: str) -> None:
        self.name, self.compared, self.mismatches, self.first = name, 0, 0, ""

    def check(self, what: str, got, expected) -> None:
        got, expected = np.asarray(got, np.int64), np.asarray(expected, np.int64)
        bad = np.flatnonzero(got.ravel() != expected.ravel())
        self.compared += expected.size
        self.mismatches += bad.size
        if bad.size and not self.first:
            i = int(bad[0])
            self.first = f"{what}[{i}]: expected {expected.ravel()[i]}, got {got.ravel()[i]}"

    def finish(self, dut) -> None:
        COUNTS[self.name] = {"compared": self.compared, "mismatches": self.mismatches}
        report = os.environ.get("INT4RT_TB_REPORT")
        if report:
            Path(report).write_text(json.dumps(COUNTS, indent=1), encoding="utf-8")
        dut._log.info("%s: %d compared, %d mismatches %s", self.name, self.compared,
                      self.mismatches, self.first)
        assert self.mismatches == 0, f"{self.name}: {self.mismatches} mismatches; {self.first}"


def _dirs(variable: str) -> list[Path]:
    return [Path(p) for p in os.environ.get(variable, "").split(os.pathsep) if p]


async def settle() -> None:
    await Timer(1, unit="ns")


async def requantize(dut, acc, mult, shift, single: bool, zp_y: int, lo: int, hi: int):
    """(y, y_sat) of the requantization bank for up to LANES accumulators."""
    n = len(acc)
    pad = LANES - n
    dut.rq_acc.value = pack(list(acc) + [0] * pad, 32)
    dut.rq_mult.value = pack(list(mult) + [0] * pad, 32)
    dut.rq_shift.value = pack(list(shift) + [0] * pad, 6)
    dut.rq_single_rounding.value = int(single)
    dut.rq_zp_y.value = zp_y & 0xFFFFFFFF
    dut.rq_y_min.value = lo & 0xFFFFFFFF
    dut.rq_y_max.value = hi & 0xFFFFFFFF
    await settle()
    return (unpack(int(dut.rq_y.value), 64, n), unpack(int(dut.rq_y_sat.value), 32, n))


@cocotb.test()
async def requant_golden(dut):
    """§4: both rounding modes on every case of arith_requantize."""
    tally = Tally("requantize")
    if not _dirs("INT4RT_TB_REQUANT"):
        return
    for root in _dirs("INT4RT_TB_REQUANT"):
        ex = Export(root)
        acc, mult, shift = ex["acc"], ex["multiplier"], ex["shift"]
        for mode, name in ((False, "double.y"), (True, "single.y")):
            expected = ex[name]
            for start in range(0, acc.size, LANES):
                sl = slice(start, start + LANES)
                y, _ = await requantize(dut, acc[sl], mult[sl], shift[sl], mode, 0, *INT32)
                tally.check(f"{root.name}/{name}@{start}", y, expected[sl])
    tally.finish(dut)


async def load_table(dut, prefix: str, table) -> None:
    """Write a 256-entry table into the RAM behind ``{prefix}_table_*``."""
    we = getattr(dut, f"{prefix}_table_we")
    await FallingEdge(dut.clk)
    for address, value in enumerate(table):
        getattr(dut, f"{prefix}_table_addr").value = address
        getattr(dut, f"{prefix}_table_data").value = int(value)
        we.value = 1
        await RisingEdge(dut.clk)
    we.value = 0
    await FallingEdge(dut.clk)


async def start_clock(dut) -> None:
    """A 2 ns clock; returns at its first falling edge, where inputs may change."""
    Clock(dut.clk, 2, unit="ns").start()
    await FallingEdge(dut.clk)


@cocotb.test()
async def activation_golden(dut):
    """§6: sigmoid16 and tanh16 of all 65536 inputs with both tables (arith_activations)."""
    if not _dirs("INT4RT_TB_ACT"):
        return
    await start_clock(dut)
    tally = Tally("activation")
    for root in _dirs("INT4RT_TB_ACT"):
        ex = Export(root)
        x = ex["x"]
        scaling = ex.manifest["params"]
        dut.act_mult.value = scaling["input_multiplier"]
        dut.act_shift.value = scaling["input_shift"]
        for table_name in ("int4rt", "tflm"):
            await load_table(dut, "act", ex[f"tables.{table_name}"])
            for is_tanh, fn in ((0, "sigmoid16"), (1, "tanh16")):
                expected = ex[f"{fn}.{table_name}"]
                dut.act_is_tanh.value = is_tanh
                for start in range(0, x.size, LANES):
                    dut.act_x.value = pack(x[start:start + LANES], 16)
                    await settle()
                    got = unpack(int(dut.act_y.value), 16, LANES)
                    tally.check(f"{fn}.{table_name}@{start}", got,
                                expected[start:start + LANES])
    tally.finish(dut)


def nibbles(packed: np.ndarray) -> np.ndarray:
    """The int4 codes of a §5 byte stream, low nibble first (as raw 4-bit fields)."""
    return np.stack([packed & 0xF, packed >> 4], axis=1).ravel()


async def mac_rows(dut, x_rows: np.ndarray, weight: np.ndarray, packed: np.ndarray | None,
                   bias: np.ndarray, x_signed: bool, zp_x: int, tally: Tally,
                   what: str) -> np.ndarray:
    """acc [B, N] of both MAC rows (the int4 row fed from the packed memory when given)."""
    batch, k_in = x_rows.shape
    n_out = weight.shape[0]
    fields = nibbles(packed) if packed is not None else None
    dut.mac_x_signed.value = int(x_signed)
    dut.mac_zp_x.value = zp_x & 0x3FF
    beats = -(-k_in // LANES)
    await FallingEdge(dut.clk)  # combinational tests move time by half periods
    acc = np.zeros((batch, n_out), dtype=np.int64)
    for b in range(batch):
        for n in range(n_out):
            for beat in range(beats):
                k0, k1 = beat * LANES, min(k_in, beat * LANES + LANES)
                pad = LANES - (k1 - k0)
                dut.mac_start.value = int(beat == 0)
                dut.mac_en.value = 1
                dut.mac_bias.value = int(bias[n]) & 0xFFFFFFFF
                dut.mac_x.value = pack(list(x_rows[b, k0:k1]) + [0] * pad, 8)
                dut.mac8_w.value = pack(list(weight[n, k0:k1]) + [0] * pad, 8)
                if fields is not None:
                    base = n * k_in
                    dut.mac4_w.value = pack(list(fields[base + k0:base + k1]) + [0] * pad, 4)
                await RisingEdge(dut.clk)
            dut.mac_en.value = 0
            dut.mac_start.value = 0
            await FallingEdge(dut.clk)
            got8 = dut.mac8_acc.value.to_signed()
            acc[b, n] = got8
            if fields is not None:
                tally.check(f"{what} int4 row {n}", [dut.mac4_acc.value.to_signed()], [got8])
    return acc


@cocotb.test()
async def fully_connected_golden(dut):
    """§5, §7.1: MAC rows + requantization on every case of arith_fully_connected."""
    if not _dirs("INT4RT_TB_FC"):
        return
    await start_clock(dut)
    tally = Tally("fully_connected")
    for root in _dirs("INT4RT_TB_FC"):
        ex = Export(root)
        for case, p in ex.manifest["params"]["cases"].items():
            x = ex[f"{case}.x"]
            x_rows = x.reshape(-1, x.shape[-1])
            weight = ex[f"{case}.weight"]
            packed = ex[f"{case}.weight_packed"] if f"{case}.weight_packed" in ex else None
            bias = ex[f"{case}.bias"]
            signed = ex.entry(f"{case}.x")["signed"]
            acc = await mac_rows(dut, x_rows, weight, packed, bias, signed, p["zp_x"], tally,
                                 case)
            tally.check(f"{case}.acc", acc, ex[f"{case}.acc"].reshape(acc.shape))
            mult, shift = ex[f"{case}.multiplier"], ex[f"{case}.shift"]
            for single, mode in ((False, "double"), (True, "single")):
                y = np.zeros_like(acc)
                for b in range(acc.shape[0]):
                    for n0 in range(0, acc.shape[1], LANES):
                        sl = slice(n0, n0 + LANES)
                        m = np.broadcast_to(mult, acc.shape[1:])[sl]
                        s = np.broadcast_to(shift, acc.shape[1:])[sl]
                        _, y[b, sl] = await requantize(dut, acc[b, sl], m, s, single,
                                                       p["zp_y"], p["y_min"], p["y_max"])
                tally.check(f"{case}.{mode}.y", y, ex[f"{case}.{mode}.y"].reshape(y.shape))
    tally.finish(dut)


def lstm_jobs(ex: Export) -> list[dict]:
    """The LSTM directions of an export: golden ``lstm_*`` sets or ``int4rt trace`` output."""
    manifest = ex.manifest
    if "lstm_directions" in manifest:
        return [dict(d, rounding=manifest["rounding"]) for d in manifest["lstm_directions"]]
    params = manifest["params"]
    return [{"prefix": d["prefix"], "reverse": d["reverse"], "inputs": ["x"], "params": "",
             "table": "tables.sigmoid", "cell": params["cell"], "rounding": params["rounding"]}
            for d in params["directions"]]


def code_range(fmt: dict) -> tuple[int, int]:
    """[qmin, qmax] of an activation format (ARITHMETIC.md §2)."""
    bits = fmt["bits"]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt["signed"] else (0, (1 << bits) - 1)


async def fc_int16(dut, x_rows, ex: Export, layer: str, x_fmt: dict, single: bool,
                   tally: Tally, what: str) -> np.ndarray:
    """§8.2: clamp(requantize(Σ W·(x − zp) + b, M[r], s[r]), int16) for rows of x codes."""
    weight = ex[f"{layer}.weight"]
    packed = ex[f"{layer}.weight_packed"] if f"{layer}.weight_packed" in ex else None
    bias = ex[f"{layer}.bias"] if f"{layer}.bias" in ex else np.zeros(weight.shape[0], np.int64)
    acc = await mac_rows(dut, x_rows, weight, packed, bias, x_fmt["signed"],
                         x_fmt["zero_point"], tally, what)
    mult, shift = ex[f"{layer}.multiplier"], ex[f"{layer}.shift"]
    out = np.zeros_like(acc)
    for b in range(acc.shape[0]):
        for n0 in range(0, acc.shape[1], LANES):
            sl = slice(n0, n0 + LANES)
            _, out[b, sl] = await requantize(dut, acc[b, sl], mult[sl], shift[sl], single, 0,
                                             *INT16)
    return out


def _lanes(gates: np.ndarray, hidden_size: int, j0: int, j1: int) -> list[int]:
    """Cells j0..j1 of the four gate blocks (i, f, g, o) in the cell unit's bus order."""
    pad = [0] * (LANES - (j1 - j0))
    return [int(v) for k in range(4)
            for v in list(gates[k * hidden_size + j0:k * hidden_size + j1]) + pad]


async def cell_step(dut, gx, gh, c_prev, hidden_size: int) -> dict[str, np.ndarray]:
    """One LSTM step of every cell through the cell unit, LANES cells at a time."""
    out = {k: np.zeros(4 * hidden_size if k in ("pre", "gate") else hidden_size, np.int64)
           for k in ("pre", "gate", "c", "h")}
    for j0 in range(0, hidden_size, LANES):
        j1 = min(hidden_size, j0 + LANES)
        n, pad = j1 - j0, [0] * (LANES - (j1 - j0))
        dut.cell_gx.value = pack(_lanes(gx, hidden_size, j0, j1), 16)
        dut.cell_gh.value = pack(_lanes(gh, hidden_size, j0, j1), 16)
        dut.cell_c_prev.value = pack(list(c_prev[j0:j1]) + pad, 16)
        await settle()
        pre = unpack(int(dut.cell_pre.value), 16, 4 * LANES)
        gate = unpack(int(dut.cell_gate.value), 16, 4 * LANES)
        for k in range(4):
            out["pre"][k * hidden_size + j0:k * hidden_size + j1] = pre[k * LANES:k * LANES + n]
            out["gate"][k * hidden_size + j0:k * hidden_size + j1] = gate[k * LANES:k * LANES + n]
        out["c"][j0:j1] = unpack(int(dut.cell_c.value), 16, n)
        out["h"][j0:j1] = unpack(int(dut.cell_h.value), 8, n)
    return out


async def lstm_direction(dut, ex: Export, job: dict, tally: Tally) -> None:
    """A whole direction: input projection, then the recurrence entirely in RTL (h, c fed
    back from the design, never from the golden files), every trace tensor compared."""
    prefix, cell, single = job["prefix"], job["cell"], job["rounding"] == "single"
    params = job["params"] + "." if job["params"] else ""
    x = np.concatenate([ex[name] for name in job["inputs"]], axis=1)
    gx = await fc_int16(dut, x, ex, f"{params}input_fc", cell["input"], single, tally, prefix)
    tally.check(f"{prefix}.input_proj", gx, ex[f"{prefix}.input_proj"])
    hidden = cell["hidden"]
    qmin, qmax = code_range(hidden)
    derived = cell["derived"]
    dut.cell_single_rounding.value = int(single)
    dut.cell_update_shift.value = derived["input_requant"][1] & 0x3F
    dut.cell_cell_mult.value, dut.cell_cell_shift.value = derived["tanh_cell_scaling"]
    dut.cell_clip.value = cell["cell_clip"]
    dut.cell_hidden_mult.value = cell["hidden_multiplier"] & 0xFFFFFFFF
    dut.cell_hidden_shift.value = cell["hidden_shift"] & 0x3F
    dut.cell_zp_h.value = hidden["zero_point"] & 0xFFFFFFFF
    dut.cell_qmin_h.value = qmin & 0xFFFFFFFF
    dut.cell_qmax_h.value = qmax & 0xFFFFFFFF
    size = gx.shape[1] // 4
    h = np.full(size, hidden["zero_point"], np.int64)
    c = np.zeros(size, np.int64)
    expected = {name: ex[f"{prefix}.{name}"] for name in
                ("gate_pre", "gate.i", "gate.f", "gate.g", "gate.o", "cell", "hidden")}
    steps = range(gx.shape[0] - 1, -1, -1) if job["reverse"] else range(gx.shape[0])
    for t in steps:
        gh = await fc_int16(dut, h[None, :], ex, f"{params}recurrent_fc", hidden, single,
                            tally, prefix)
        out = await cell_step(dut, gx[t], gh[0], c, size)
        h = out["h"] if hidden["signed"] else out["h"] & 0xFF
        c = out["c"]
        tally.check(f"{prefix}.gate_pre[{t}]", out["pre"], expected["gate_pre"][t])
        for k, name in enumerate(("gate.i", "gate.f", "gate.g", "gate.o")):
            tally.check(f"{prefix}.{name}[{t}]", out["gate"][k * size:(k + 1) * size],
                        expected[name][t])
        tally.check(f"{prefix}.cell[{t}]", c, expected["cell"][t])
        tally.check(f"{prefix}.hidden[{t}]", h, expected["hidden"][t])


@cocotb.test()
async def lstm_golden(dut):
    """§5–§8: every LSTM direction of lstm_* sets and int4rt traces, MAC rows → requant →
    cell unit, recurrence closed in RTL."""
    if not _dirs("INT4RT_TB_LSTM"):
        return
    await start_clock(dut)
    tally = Tally("lstm")
    for root in _dirs("INT4RT_TB_LSTM"):
        ex = Export(root)
        loaded = None
        for job in lstm_jobs(ex):
            if job["table"] != loaded:
                await load_table(dut, "cell", ex[job["table"]])
                loaded = job["table"]
            await lstm_direction(dut, ex, job, tally)
    tally.finish(dut)
