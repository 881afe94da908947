"""The full-decode peer: sherpa-onnx's streaming transducer with RNN-LM shallow fusion.

sherpa-onnx fuses a neural LM during search only in its streaming (online) recognizer, so
the peer is an online "lstm" transducer of the paper's size, exported with the input and
output names and metadata that recognizer reads: encoder ``(x [N, T, 80], h, c) →
(encoder_out, next_h, next_c)``; decoder ``y [N, context] → decoder_out``; joiner
``(encoder_out, decoder_out) → logit``; LM ``(x [N, 1], h, c) → (log-probs, next_h,
next_c)`` with ``num_layers``, ``hidden_size`` and ``sos_id``. A streaming encoder cannot be
bidirectional: it is a 6-layer unidirectional LSTM of 1024 cells (50 M parameters, the
BiLSTM's 54 M), over pairs of stacked 80-dim fbank frames. The predictor is an embedding and
a 768-cell LSTM over the decoder context; the LM a 2 × 1024 LSTM, as ``lm-paper``. Weights
are random, scaled so the encoder's output varies by frame (``ENC_GAIN``); the blank logit's
bias is raised until greedy search emits the wanted label rate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

CHUNK = 32  # feature frames per encoder call (decode_chunk_len = T: no look-ahead)
CONTEXT = 2
ENC_LAYERS, ENC_HIDDEN, PRED_HIDDEN, JOINT, EMBED = 6, 1024, 768, 256, 256
LM_LAYERS, LM_HIDDEN = 2, 1024
# With PyTorch's default initialisation the 6-layer encoder's output barely moves from frame
# to frame on noise (std over frames 4e-4), so greedy search emits either one label on every
# frame or none, whatever the blank bias. These gains make the output frame-varying, so the
# label rate is a smooth function of the blank bias (about 2 to 49 labels/s over biases
# 0 to 2) and many labels occur; fp32 ONNX run time does not depend on weight values.
ENC_GAIN, JOINER_ENC_GAIN = 4.0, 30.0
RATE_TOLERANCE = 0.15  # a tuned label rate further than this share from the target is an error


def _add_metadata(path: Path, meta: dict[str, object]) -> None:
    import onnx

    model = onnx.load(str(path))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(model, str(path))


def export(folder: Path, vocab: list[str], blank_bias: float,
           parts: tuple[str, ...] = ("encoder", "decoder", "joiner", "lm")) -> dict[str, Path]:
    """Write ``parts`` (encoder, decoder, joiner, LM) and tokens.txt into ``folder``.

    Every part is made from its own seed, so re-exporting only the joiner with another blank
    bias leaves the other files valid.
    """
    import torch
    from torch import nn

    torch.manual_seed(0)
    vocab_size = len(vocab)

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.lstm = nn.LSTM(160, ENC_HIDDEN, num_layers=ENC_LAYERS, batch_first=True)
            with torch.no_grad():
                for name, weight in self.lstm.named_parameters():
                    if name.startswith("weight"):
                        weight.mul_(ENC_GAIN)

        def forward(self, x, h, c):
            n, t, f = x.shape
            out, (h1, c1) = self.lstm(x.reshape(n, t // 2, 2 * f), (h, c))
            return out, h1, c1

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(2)
            self.embed = nn.Embedding(vocab_size, EMBED)
            self.lstm = nn.LSTM(EMBED, PRED_HIDDEN, batch_first=True)

        def forward(self, y):
            out, _ = self.lstm(self.embed(y))
            return out[:, -1]

    class Joiner(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(3)
            self.enc = nn.Linear(ENC_HIDDEN, JOINT)
            self.dec = nn.Linear(PRED_HIDDEN, JOINT)
            self.out = nn.Linear(JOINT, vocab_size)
            with torch.no_grad():
                self.enc.weight.mul_(JOINER_ENC_GAIN)
                self.out.bias[0] += blank_bias

        def forward(self, encoder_out, decoder_out):
            return self.out(torch.tanh(self.enc(encoder_out) + self.dec(decoder_out)))

    class Lm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(4)
            self.embed = nn.Embedding(vocab_size, EMBED)
            self.lstm = nn.LSTM(EMBED, LM_HIDDEN, num_layers=LM_LAYERS, batch_first=True)
            self.out = nn.Linear(LM_HIDDEN, vocab_size)

        def forward(self, x, h, c):
            out, (h1, c1) = self.lstm(self.embed(x), (h, c))
            return torch.log_softmax(self.out(out), dim=-1), h1, c1

    paths = {name: folder / f"sherpa-{name}.onnx" for name in ("encoder", "decoder", "joiner",
                                                               "lm")}
    state = torch.zeros(ENC_LAYERS, 1, ENC_HIDDEN)
    lm_state = torch.zeros(LM_LAYERS, 1, LM_HIDDEN)
    exports = (
        (Encoder(), (torch.randn(1, CHUNK, 80), state, state), ["x", "h", "c"],
         ["encoder_out", "next_h", "next_c"], {"x": {0: "N"}, "h": {1: "N"}, "c": {1: "N"}},
         "encoder"),
        (Decoder(), (torch.zeros(1, CONTEXT, dtype=torch.int64),), ["y"], ["decoder_out"],
         {"y": {0: "N"}}, "decoder"),
        (Joiner(), (torch.randn(1, ENC_HIDDEN), torch.randn(1, PRED_HIDDEN)),
         ["encoder_out", "decoder_out"], ["logit"],
         {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}}, "joiner"),
        (Lm(), (torch.zeros(1, 1, dtype=torch.int64), lm_state, lm_state), ["x", "h", "c"],
         ["log_probs", "next_h", "next_c"], {"x": {0: "N"}, "h": {1: "N"}, "c": {1: "N"}},
         "lm"),
    )
    for net, inputs, in_names, out_names, axes, name in exports:
        if name not in parts:
            continue
        torch.onnx.export(net.eval(), inputs, str(paths[name]), dynamo=False, opset_version=17,
                          input_names=in_names, output_names=out_names, dynamic_axes=axes)
    if "encoder" not in parts:
        return paths
    _add_metadata(paths["encoder"], {"model_type": "lstm", "num_encoder_layers": ENC_LAYERS,
                                     "T": CHUNK, "decode_chunk_len": CHUNK,
                                     "rnn_hidden_size": ENC_HIDDEN, "d_model": ENC_HIDDEN})
    _add_metadata(paths["decoder"], {"vocab_size": vocab_size, "context_size": CONTEXT})
    _add_metadata(paths["lm"], {"num_layers": LM_LAYERS, "hidden_size": LM_HIDDEN,
                                "sos_id": 0})
    tokens = folder / "sherpa-tokens.txt"
    tokens.write_text("".join(f"{'▁' if s == ' ' else s.replace(' ', '_')} {i}\n"
                              for i, s in enumerate(vocab)))
    paths["tokens"] = tokens
    return paths


def recognizer(paths: dict[str, Path], threads: int, beam: int, lm_scale: float | None):
    """An online recognizer: modified beam search ``beam`` (+ LM shallow fusion if scale)."""
    import sherpa_onnx

    extra = {} if lm_scale is None else {"lm": str(paths["lm"]), "lm_scale": lm_scale}
    method = "greedy_search" if beam == 1 else "modified_beam_search"
    return sherpa_onnx.OnlineRecognizer.from_transducer(
        tokens=str(paths["tokens"]), encoder=str(paths["encoder"]),
        decoder=str(paths["decoder"]), joiner=str(paths["joiner"]), num_threads=threads,
        sample_rate=16000, feature_dim=80, decoding_method=method, max_active_paths=beam,
        model_type="lstm", **extra)


def transcribe(rec, samples: np.ndarray) -> list[str]:
    """Tokens of ``samples`` (16 kHz float32) through a fresh stream."""
    stream = rec.create_stream()
    stream.accept_waveform(16000, samples)
    stream.input_finished()
    while rec.is_ready(stream):
        rec.decode_stream(stream)
    return list(rec.get_result_all(stream).tokens)


def tuned_paths(folder: Path, vocab: list[str], samples: np.ndarray, seconds: float,
                target: float) -> tuple[dict[str, Path], float]:
    """Export with the blank bias whose greedy label rate is nearest ``target``.

    Raises RuntimeError when no bias in [-4, 4] comes within ``RATE_TOLERANCE`` of it: a peer
    at another label rate is not a like-for-like comparison.
    """
    paths = export(folder, vocab, 0.0)
    lo, hi, best = -4.0, 4.0, None
    for _ in range(10):
        mid = (lo + hi) / 2
        export(folder, vocab, mid, ("joiner",))
        rate = len(transcribe(recognizer(paths, 1, 1, None), samples)) / seconds
        if best is None or abs(rate - target) < abs(best[1] - target):
            best = (mid, rate)
        lo, hi = (mid, hi) if rate > target else (lo, mid)
    if abs(best[1] - target) > RATE_TOLERANCE * target:
        raise RuntimeError(f"sherpa-onnx peer: no blank bias in [-4, 4] gives {target:.1f} "
                           f"labels/s (nearest: {best[1]:.1f} at bias {best[0]:+.2f})")
    export(folder, vocab, best[0], ("joiner",))
    return paths, best[1]


def runs(paths: dict[str, Path], samples: np.ndarray, threads: int,
         lm_scale: float = 0.5) -> dict[str, Callable[[], object]]:
    """sherpa-onnx decodes of ``samples``: greedy, modified beam 8, beam 8 + LM fusion."""
    recognizers = {
        "sherpa-onnx greedy": recognizer(paths, threads, 1, None),
        "sherpa-onnx beam 8": recognizer(paths, threads, 8, None),
        "sherpa-onnx beam 8 + RNN-LM fusion": recognizer(paths, threads, 8, lm_scale),
    }
    return {name: (lambda r=rec: transcribe(r, samples)) for name, rec in recognizers.items()}
