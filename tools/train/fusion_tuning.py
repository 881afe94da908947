"""Choosing the fusion weights on a dev set (docs/RESULTS.md, "Accuracy"), and the decoding
grid of the shipped model (``decoding_points``, ``best_point``; docs/TRAINING.md §7).

Shallow fusion: the external LM weight λ from ``lm_weights`` with the lowest dev WER.
Density ratio: the pair (λ, μ) from ``lm_weights`` × ``source_weights`` with the lowest dev
WER. Ties go to the first point in grid order (λ varying slowest, smaller weights first as
given). Only the dev utterances handed to :func:`tune` are ever decoded here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from int4rt.manifests import Item
from int4rt_train.accuracy_table import Tally

# decode(item, mode, lm_weight, source_weight) -> hypothesis text
DecodeText = Callable[[Item, str, float, float], str]


@dataclass(frozen=True)
class Choice:
    """The chosen weights and the dev WER of every grid point (λ, μ, WER)."""

    shallow: float | None
    density_ratio: tuple[float, float] | None
    points: tuple[tuple[str, float, float, float], ...]


def _best(points: list[tuple[str, float, float, float]], mode: str
          ) -> tuple[float, float] | None:
    scored = [(wer, index, lm, src) for index, (m, lm, src, wer) in enumerate(points)
              if m == mode]
    if not scored:
        return None
    _, _, lm, src = min(scored)
    return lm, src


def tune(decode: DecodeText, dev_items: Sequence[Item], lm_weights: Sequence[float],
         source_weights: Sequence[float], *, with_source: bool) -> Choice:
    """Dev WER at every grid point; the best shallow λ and density-ratio (λ, μ).

    ``with_source`` False (no source LM): density ratio is not tuned.
    """
    grid = [("shallow", lm, 0.0) for lm in lm_weights]
    if with_source:
        grid += [("density_ratio", lm, src) for lm in lm_weights for src in source_weights]
    points = []
    for mode, lm, src in grid:
        tally = Tally()
        for item in dev_items:
            tally.add(item.reference or "", decode(item, mode, lm, src))
        points.append((mode, lm, src, tally.wer))
    shallow = _best(points, "shallow")
    return Choice(None if shallow is None else shallow[0], _best(points, "density_ratio"),
                  tuple(points))


@dataclass(frozen=True)
class DecodingGrid:
    """What ``int4rt_train.ship`` tries besides greedy: search methods (``beam``: modified beam
    search, one symbol per frame; ``alsd``: several) × beams × external-LM weight λ_ext ×
    source-LM weight λ_src × length reward (nats per label, an insertion bonus)."""

    methods: tuple[str, ...] = ("beam", "alsd")
    beams: tuple[int, ...] = (4, 8)
    lm_weights: tuple[float, ...] = (0.0, 0.3, 0.6, 1.0)
    source_weights: tuple[float, ...] = (0.0, 0.3, 0.6)
    length_rewards: tuple[float, ...] = (0.0, 1.0)


def decoding_points(grid: DecodingGrid, has_lm: bool, has_source: bool) -> list[dict[str, Any]]:
    """Greedy, then every grid point as ``DecodeOptions`` fields, in grid order (method, beam,
    λ_ext, λ_src, length reward; the first given varies slowest). Weights of an absent LM are
    0 only; λ_src > 0 needs 0 < λ_src ≤ λ_ext (a source LM alone, or outweighing the external
    one, would only penalize the target domain's text)."""
    lm_weights = grid.lm_weights if has_lm else (0.0,)
    source_weights = grid.source_weights if has_source else (0.0,)
    points: list[dict[str, Any]] = [{"method": "greedy"}]
    for method, beam, lm_w, src_w, reward in itertools.product(
            grid.methods, grid.beams, lm_weights, source_weights, grid.length_rewards):
        if src_w > 0 and not 0 < src_w <= lm_w:
            continue
        point: dict[str, Any] = {"method": method, "beam": beam, "length_reward": reward}
        if lm_w > 0:
            point["lm_weight"] = lm_w
        if src_w > 0:
            point["source_lm_weight"] = src_w
        points.append(point)
    return points


def best_point(table: Sequence[dict[str, Any]]) -> int:
    """Index of the row with the lowest ``wer``, then ``cer``, then the earliest (simplest)."""
    return min(range(len(table)), key=lambda i: (table[i]["wer"], table[i]["cer"], i))
