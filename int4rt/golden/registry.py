"""Which golden sets exist, in which order, and how each kind is replayed
(docs/VERIFICATION.md §2)."""

from __future__ import annotations

from collections.abc import Callable

from int4rt.golden import (
    activation_sets,
    decode_sets,
    gemv_sets,
    lstm_sets,
    model_sets,
    requant_sets,
)
from int4rt.golden.store import Computed, GoldenSet

Builder = Callable[[], list[GoldenSet]]
Replay = Callable[[GoldenSet, str], list[Computed]]

BUILDERS: tuple[Builder, ...] = (
    lambda: [requant_sets.build_requantize()],
    lambda: [activation_sets.build_activations()],
    lambda: [activation_sets.build_activations_worked()],
    lambda: [gemv_sets.build_pack_int4()],
    lambda: [gemv_sets.build_fully_connected()],
    lstm_sets.build_lstm_sets,
    model_sets.build_rnnt_sets,
    decode_sets.build_decode_sets,
)

REPLAYS: dict[str, Replay] = {
    "requantize": requant_sets.replay_requantize,
    "activations": activation_sets.replay_activations,
    "activations_worked": activation_sets.replay_activations_worked,
    "pack_int4": gemv_sets.replay_pack_int4,
    "fully_connected": gemv_sets.replay_fully_connected,
    "lstm": lstm_sets.replay_lstm,
    "rnnt_lattice": model_sets.replay_rnnt,
    "decode": decode_sets.replay_decode,
}


def build_all() -> list[GoldenSet]:
    """Every golden set, made by the NumPy reference, in index order."""
    return [gset for build in BUILDERS for gset in build()]
