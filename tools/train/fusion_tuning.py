"""Choosing the fusion weights on a dev set (docs/RESULTS.md, "Accuracy").

Shallow fusion: the external LM weight λ from ``lm_weights`` with the lowest dev WER.
Density ratio: the pair (λ, μ) from ``lm_weights`` × ``source_weights`` with the lowest dev
WER. Ties go to the first point in grid order (λ varying slowest, smaller weights first as
given). Only the dev utterances handed to :func:`tune` are ever decoded here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
