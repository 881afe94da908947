"""The slow, obviously-correct twin of ``int4rt.decode.search`` (docs/DECODING.md, "Scores"
to "ALSD"): Python hypotheses, a dict of per-history outputs, NumPy scoring and an explicit
``numpy.lexsort``. ``int4rt.decode`` must return exactly what this returns
(``tests/test_decode_twin.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from int4rt.decode import DecodeOptions, DecodeResult
from int4rt.decode.hypothesis import Hypothesis
from int4rt.decode.scoring import AM, BLANK, COMPONENTS, EXT, LENGTH, Scoring
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel
from int4rt.ops.requantize.reference import rounding_divide_by_pot

History = tuple[int, ...]


def naive_search(model: RnntModel, enc_proj: np.ndarray, options: DecodeOptions, *,
                 lm: LmModel | None = None, source_lm: LmModel | None = None,
                 backend: str = "numpy") -> DecodeResult:
    """What ``int4rt.decode.search`` returns, computed the plain way."""
    options.validate()
    scoring = Scoring.build(model, options, lm, source_lm)
    cache = _Cache(model, [fusion.lm for fusion in scoring.fusions], backend)
    frames = enc_proj.shape[0]
    if options.method == "greedy":
        hyps = _greedy(model, cache, scoring, enc_proj, options.max_symbols_per_frame, backend)
    elif options.method == "beam":
        hyps = _modified_beam(model, cache, scoring, enc_proj, options.beam, backend)
    else:
        max_labels = frames if options.max_label_length is None else options.max_label_length
        hyps = _alsd(model, cache, scoring, enc_proj, options.beam, max_labels, backend)
    return DecodeResult.build(model, [_public(hyp) for hyp in hyps], frames, options.nbest)


class _Hyp:
    def __init__(self, tokens: History = (), frames: History = (),
                 parts: tuple[int, ...] = (0,) * len(COMPONENTS)) -> None:
        self.tokens, self.frames, self.parts = tokens, frames, parts

    @property
    def score(self) -> int:
        return sum(self.parts)

    def extend(self, token: int | None, frame: int, parts: np.ndarray) -> _Hyp:
        new_parts = tuple(int(p) for p in parts)
        if token is None:
            return _Hyp(self.tokens, self.frames, new_parts)
        return _Hyp((*self.tokens, token), (*self.frames, frame), new_parts)


def _public(hyp: _Hyp) -> Hypothesis:
    return Hypothesis(hyp.tokens, hyp.frames, hyp.parts)  # type: ignore[arg-type]


class _Cache:
    """Predictor projection and LM log-probabilities per label history, one row at a time."""

    def __init__(self, model: RnntModel, lms: Sequence[LmModel], backend: str) -> None:
        self._model, self._lms, self._backend = model, tuple(lms), backend
        self._nodes: dict[History, tuple] = {}
        self._evaluate((), model.blank_id, model.predictor_initial_state(1),
                       [lm.initial_state(1) for lm in self._lms])

    def extend(self, histories: Iterable[History]) -> None:
        for y in histories:
            if y not in self._nodes:
                _, pred_state, _, lm_states, _ = self._nodes[y[:-1]]
                self._evaluate(y, y[-1], pred_state, lm_states)

    def _evaluate(self, y: History, token: int, pred_state, lm_states) -> None:
        ids = np.array([token])
        out, pred_state = self._model.predictor_step(ids, pred_state, backend=self._backend)
        proj = self._model.project_predictor(out, backend=self._backend)[0]
        steps = [lm.step(ids, state, backend=self._backend)
                 for lm, state in zip(self._lms, lm_states, strict=True)]
        self._nodes[y] = (proj, pred_state, [lp[0] for lp, _ in steps],
                          [state for _, state in steps], None)

    def pred_proj(self, histories: Sequence[History]) -> np.ndarray:
        return np.stack([self._nodes[y][0] for y in histories])

    def lm_log_probs(self, histories: Sequence[History]) -> list[np.ndarray]:
        return [np.stack([self._nodes[y][2][index] for y in histories])
                for index in range(len(self._lms))]


def _terms(scoring: Scoring, am: np.ndarray, lm_log_probs: list[np.ndarray]) -> np.ndarray:
    """Per-emission components int64 [N, V, 5] (DECODING.md, "Emission components")."""
    out = np.zeros((*am.shape, len(COMPONENTS)), dtype=np.int64)
    out[..., AM] = am
    for fusion, log_probs in zip(scoring.fusions, lm_log_probs, strict=True):
        scaled = rounding_divide_by_pot(fusion.weight_q * log_probs.astype(np.int64),
                                        fusion.shift)
        out[..., fusion.component] = scaled if fusion.component == EXT else -scaled
    out[..., LENGTH] = scoring.length_reward_q
    out[:, scoring.blank_id, :] = 0
    out[:, scoring.blank_id, AM] = am[:, scoring.blank_id]
    out[:, scoring.blank_id, BLANK] = -scoring.blank_penalty_q
    return out


def _expand(model, cache, scoring, hyps, enc_rows, backend) -> np.ndarray:
    histories = [hyp.tokens for hyp in hyps]
    am = model.joint_log_probs(enc_rows, cache.pred_proj(histories), backend=backend)
    terms = _terms(scoring, am, cache.lm_log_probs(histories))
    parents = np.array([hyp.parts for hyp in hyps], dtype=np.int64)
    return parents[:, None, :] + terms


def _select(histories, totals, beam, blank_id, allowed=None) -> list[tuple[int, int]]:
    """Recombine (the earlier in the total order survives), then the first ``beam`` in
    (score desc, parent asc, symbol asc)."""
    keep = np.ones(totals.shape, dtype=bool) if allowed is None else allowed.copy()
    rank = {y: h for h, y in enumerate(histories)}
    for h_blank, y in enumerate(histories):
        h_label = rank.get(y[:-1]) if y else None
        if h_label is None or not keep[h_label, y[-1]] or not keep[h_blank, blank_id]:
            continue
        label, blank = (h_label, y[-1]), (h_blank, blank_id)
        label_first = (-totals[label], h_label, y[-1]) < (-totals[blank], h_blank, blank_id)
        keep[blank if label_first else label] = False
    parent, symbol = np.nonzero(keep)
    scores = totals[parent, symbol]
    order = np.lexsort((symbol, parent, -scores))[:beam]
    return list(zip(parent[order].tolist(), symbol[order].tolist(), strict=True))


def _greedy(model, cache, scoring, enc_proj, max_symbols, backend) -> list[_Hyp]:
    hyp = _Hyp()
    for frame in range(enc_proj.shape[0]):
        for _ in range(max_symbols):
            parts = _expand(model, cache, scoring, [hyp], enc_proj[frame:frame + 1], backend)[0]
            symbol = int(np.argmax(parts.sum(axis=1)))  # first maximum: lowest id
            if symbol == scoring.blank_id:
                hyp = hyp.extend(None, frame, parts[symbol])
                break
            hyp = hyp.extend(symbol, frame, parts[symbol])
            cache.extend([hyp.tokens])
    return [hyp]


def _modified_beam(model, cache, scoring, enc_proj, beam, backend) -> list[_Hyp]:
    hyps = [_Hyp()]
    for frame in range(enc_proj.shape[0]):
        enc_rows = np.repeat(enc_proj[frame:frame + 1], len(hyps), axis=0)
        parts = _expand(model, cache, scoring, hyps, enc_rows, backend)
        chosen = _select([hyp.tokens for hyp in hyps], parts.sum(axis=2), beam,
                         scoring.blank_id)
        hyps = [hyps[h].extend(None if k == scoring.blank_id else k, frame, parts[h, k])
                for h, k in chosen]
        cache.extend(hyp.tokens for hyp in hyps)
    return hyps


def _alsd(model, cache, scoring, enc_proj, beam, max_labels, backend) -> list[_Hyp]:
    frames = enc_proj.shape[0]
    blank = scoring.blank_id
    hyps = [_Hyp()] if frames else []
    finals = []
    for step in range(frames + max_labels):
        if not hyps:
            break
        lengths = np.array([len(hyp.tokens) for hyp in hyps])
        times = step - lengths
        parts = _expand(model, cache, scoring, hyps, enc_proj[times], backend)
        allowed = np.repeat((lengths < max_labels)[:, None], parts.shape[1], axis=1)
        allowed[:, blank] = True
        for h in np.flatnonzero(times == frames - 1).tolist():
            final = hyps[h].extend(None, frames - 1, parts[h, blank])
            finals.append((-final.score, step, h, final))
        chosen = _select([hyp.tokens for hyp in hyps], parts.sum(axis=2), beam, blank, allowed)
        hyps = [hyps[h].extend(None if k == blank else k, int(times[h]), parts[h, k])
                for h, k in chosen if k != blank or times[h] < frames - 1]
        cache.extend(hyp.tokens for hyp in hyps)
    finals.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in finals] or [_Hyp()]
