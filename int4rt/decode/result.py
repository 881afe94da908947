"""What a search returns: best hypothesis, n-best, frame timing, score components
(docs/DECODING.md, "Results").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from int4rt.decode.hypothesis import Hypothesis
from int4rt.decode.scoring import COMPONENTS
from int4rt.model.rnnt import RnntModel


@dataclass
class DecodeResult:
    """The best hypothesis and the n-best list (DECODING.md, "Results").

    ``score`` (int, units 2^-``frac_bits``) is the sum of ``components`` (am, ext, src,
    length, blank; DECODING.md, "Emission components"). ``frame_indices[i]`` is the encoder
    frame at which ``tokens[i]`` was emitted; frame f starts at ``seconds(f)`` =
    f · ``frame_shift_seconds`` (the front end's frame shift times the encoder's total
    stacking), and ``times_s`` lists those start times. ``nbest[0]`` is the best hypothesis
    itself; each entry has text, tokens, frame_indices, score and components.
    """

    text: str
    tokens: list[int]
    frame_indices: list[int]
    frames: int
    score: int
    components: dict[str, int]
    frac_bits: int
    frame_shift_seconds: float
    nbest: list[dict] = field(default_factory=list)

    @classmethod
    def build(cls, model: RnntModel, hyps: list[Hypothesis], frames: int,
              nbest: int) -> DecodeResult:
        """The result for ``hyps`` (best first; the first ``nbest`` are reported)."""
        stack = 1
        for layer in model.encoder.layers:
            stack *= layer.stack
        entries = [_entry(model, hyp) for hyp in hyps[:nbest]]
        best = entries[0]
        return cls(best["text"], list(best["tokens"]), list(best["frame_indices"]), frames,
                   best["score"], dict(best["components"]), model.joint.logit_frac_bits,
                   model.frontend.frame_shift_ms * stack / 1000.0, entries)

    def seconds(self, frame: int) -> float:
        """Start time in seconds of encoder frame ``frame``."""
        return frame * self.frame_shift_seconds

    @property
    def times_s(self) -> list[float]:
        """Start time in seconds of the frame of each token."""
        return [self.seconds(frame) for frame in self.frame_indices]

    def to_json(self) -> dict:
        """Plain JSON types; scores also in nats, ``score / 2^frac_bits``."""
        return {
            **self._json_entry({"text": self.text, "tokens": self.tokens,
                                "frame_indices": self.frame_indices, "score": self.score,
                                "components": self.components}),
            "frames": self.frames,
            "frame_shift_seconds": self.frame_shift_seconds,
            "frac_bits": self.frac_bits,
            "nbest": [self._json_entry(entry) for entry in self.nbest],
        }

    def _json_entry(self, entry: dict) -> dict:
        unit = float(1 << self.frac_bits)
        return {
            "text": entry["text"],
            "tokens": list(entry["tokens"]),
            "frame_indices": list(entry["frame_indices"]),
            "times_s": [self.seconds(frame) for frame in entry["frame_indices"]],
            "score": entry["score"],
            "score_nats": entry["score"] / unit,
            "components": dict(entry["components"]),
            "components_nats": {name: value / unit for name, value in entry["components"].items()},
        }


def _entry(model: RnntModel, hyp: Hypothesis) -> dict:
    return {
        "text": "".join(model.vocab[token] for token in hyp.tokens),
        "tokens": list(hyp.tokens),
        "frame_indices": list(hyp.frame_indices),
        "score": hyp.score,
        "components": dict(zip(COMPONENTS, hyp.parts, strict=True)),
    }
