"""The reference PyTorch RNN-T and character LSTM LM, named as the converter expects.

Parameter names follow docs/CONVERT.md §1.1 exactly, so ``int4rt convert`` needs no mapping
file: ``frontend.cmvn_{mean,std}``, ``encoder.lstm.{weight,bias}_{ih,hh}_l{k}[_reverse]``,
``predictor.embedding.weight``, ``predictor.lstm.*``, ``joint.{enc,pred,out}.{weight,bias}``;
the LM has ``embedding.weight``, ``lstm.*``, ``out.*``. The float semantics are those of the
converter's float model (``int4rt_convert.float_model``): global CMVN, frame stacking before
each encoder layer with the tail padded with zeros (ARITHMETIC.md §8.5), a predictor history
that starts with the blank's embedding (§8.6), joint ``tanh(E + P)`` or ``tanh(E · P)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from int4rt.model.config import LmConfig, RnntConfig


def stack_frames(x: torch.Tensor, lengths: torch.Tensor,
                 factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, F] → [B, ⌈T/factor⌉, factor·F], the tail padded with zeros, and new lengths."""
    if factor == 1:
        return x, lengths
    batch, steps, width = x.shape
    padded_steps = -(-steps // factor) * factor
    x = nn.functional.pad(x, (0, 0, 0, padded_steps - steps))
    return (x.reshape(batch, padded_steps // factor, factor * width),
            torch.div(lengths + factor - 1, factor, rounding_mode="floor"))


class StackedLstm(nn.Module):
    """(Bi-)LSTM layers with frame stacking between them, parameters named as one ``nn.LSTM``.

    Layer k holds ``weight_ih_l{k}`` [4H, in_k·stack[k]], ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (+ ``_reverse``); gates i, f, g, o as in PyTorch. In training, ``dropout``
    applies to every layer's input but the first.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool,
                 stack: tuple[int, ...], dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.directions = 2 if bidirectional else 1
        self.stack = tuple(stack)
        bound = 1.0 / math.sqrt(hidden_size)
        for layer, factor in enumerate(self.stack):
            width = (input_size if layer == 0 else self.directions * hidden_size) * factor
            for suffix in self._suffixes():
                for name, shape in ((f"weight_ih_l{layer}{suffix}", (4 * hidden_size, width)),
                                    (f"weight_hh_l{layer}{suffix}", (4 * hidden_size,
                                                                     hidden_size)),
                                    (f"bias_ih_l{layer}{suffix}", (4 * hidden_size,)),
                                    (f"bias_hh_l{layer}{suffix}", (4 * hidden_size,))):
                    self.register_parameter(
                        name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[:self.directions]

    def layer_weights(self, layer: int) -> list[torch.Tensor]:
        """Layer ``layer``'s tensors in ``torch.lstm``'s flat order (per direction: ih, hh, b)."""
        return [getattr(self, f"{kind}_l{layer}{suffix}") for suffix in self._suffixes()
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor,
                layer_outputs: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, F] padded → [B, T', D·H] (zeros past each length) and the lengths T'_b.

        ``layer_outputs``, when given, receives every layer's (output, lengths) in order.
        """
        for layer, factor in enumerate(self.stack):
            if layer:
                x = nn.functional.dropout(x, self.dropout, self.training)
            x, lengths = stack_frames(x, lengths, factor)
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            zeros = x.new_zeros(self.directions, x.shape[0], self.hidden_size)
            data, _, _ = torch.lstm(packed.data, packed.batch_sizes, (zeros, zeros),
                                    self.layer_weights(layer), True, 1, 0.0, self.training,
                                    self.directions == 2)
            out = packed._replace(data=data)
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            if layer_outputs is not None:
                layer_outputs.append((x, lengths))
        return x, lengths


class Frontend(nn.Module):
    """Global CMVN statistics (buffers ``cmvn_mean``, ``cmvn_std``), set from training data."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.register_buffer("cmvn_mean", torch.zeros(feature_dim))
        self.register_buffer("cmvn_std", torch.ones(feature_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(x − mean) / std."""
        return (features - self.cmvn_mean) / self.cmvn_std


class Encoder(nn.Module):
    """The encoder: ``encoder.lstm`` of the config's layers and frame stacking."""

    def __init__(self, config: RnntConfig, dropout: float = 0.0) -> None:
        super().__init__()
        enc = config.encoder
        self.lstm = StackedLstm(config.frontend.feature_dim, enc.hidden_size, enc.bidirectional,
                                enc.stack, dropout)


class Predictor(nn.Module):
    """Embedding of blank + labels, then a unidirectional ``nn.LSTM``."""

    def __init__(self, config: RnntConfig) -> None:
        super().__init__()
        pred = config.predictor
        self.embedding = nn.Embedding(len(config.vocab), pred.embedding_size)
        self.lstm = nn.LSTM(pred.embedding_size, pred.hidden_size, pred.num_layers,
                            batch_first=True)

    def forward(self, tokens: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Outputs [B, N, H] for tokens [B, N], and the final state."""
        return self.lstm(self.embedding(tokens), state)


class Joint(nn.Module):
    """``out(tanh(enc(e) ∘ pred(p)))`` with ∘ the config's mode (sum or product)."""

    def __init__(self, config: RnntConfig, encoder_width: int) -> None:
        super().__init__()
        self.mode = config.joint.mode
        self.enc = nn.Linear(encoder_width, config.joint.size)
        self.pred = nn.Linear(config.predictor.hidden_size, config.joint.size)
        self.out = nn.Linear(config.joint.size, len(config.vocab))

    def combine(self, enc_proj: torch.Tensor, pred_proj: torch.Tensor) -> torch.Tensor:
        """Logits of broadcastable projections."""
        pre = enc_proj + pred_proj if self.mode == "additive" else enc_proj * pred_proj
        return self.out(torch.tanh(pre))


class Transducer(nn.Module):
    """The RNN-T of an ``RnntConfig``: frontend (CMVN), encoder, predictor, joint."""

    def __init__(self, config: RnntConfig, dropout: float = 0.0) -> None:
        super().__init__()
        self.blank = config.blank_id
        self.frontend = Frontend(config.frontend.feature_dim)
        self.encoder = Encoder(config, dropout)
        self.predictor = Predictor(config)
        width = (2 if config.encoder.bidirectional else 1) * config.encoder.hidden_size
        self.joint = Joint(config, width)

    def encode(self, features: torch.Tensor,
               lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [B, T, F] (any padding) → encoder output [B, T', D·H] and lengths."""
        x = self.frontend(features)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        return self.encoder.lstm(x * mask[..., None], lengths)

    def predict(self, labels: torch.Tensor) -> torch.Tensor:
        """Predictor outputs [B, U+1, H] for histories blank, blank+y1, …"""
        start = labels.new_full((labels.shape[0], 1), self.blank)
        out, _ = self.predictor(torch.cat([start, labels], dim=1))
        return out

    def forward(self, features: torch.Tensor, lengths: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities [B, T', U+1, V] and encoder lengths T'_b."""
        enc, enc_lengths = self.encode(features, lengths)
        pred = self.predict(labels)
        logits = self.joint.combine(self.joint.enc(enc)[:, :, None],
                                    self.joint.pred(pred)[:, None])
        return logits.log_softmax(-1), enc_lengths

    @torch.no_grad()
    def greedy(self, features: torch.Tensor, lengths: torch.Tensor,
               max_symbols: int = 5) -> list[list[int]]:
        """Batched greedy decoding: at most ``max_symbols`` labels per encoder frame."""
        enc, enc_lengths = self.encode(features, lengths)
        enc_proj = self.joint.enc(enc)
        batch = enc.shape[0]
        tokens = torch.full((batch, 1), self.blank, dtype=torch.long, device=enc.device)
        pred, state = self.predictor(tokens)
        pred_proj = self.joint.pred(pred[:, 0])
        hyps: list[list[int]] = [[] for _ in range(batch)]
        for t in range(enc.shape[1]):
            active = enc_lengths > t
            for _ in range(max_symbols):
                best = self.joint.combine(enc_proj[:, t], pred_proj).argmax(-1)
                emit = active & (best != self.blank)
                if not bool(emit.any()):
                    break
                for row in emit.nonzero().flatten().tolist():
                    hyps[row].append(int(best[row]))
                new_pred, new_state = self.predictor(best[:, None], state)
                keep = emit[None, :, None]
                state = (torch.where(keep, new_state[0], state[0]),
                         torch.where(keep, new_state[1], state[1]))
                pred_proj = torch.where(emit[:, None], self.joint.pred(new_pred[:, 0]),
                                        pred_proj)
                active = emit
        return hyps


class CharLm(nn.Module):
    """Character LSTM LM of an ``LmConfig``: ``embedding``, ``lstm``, ``out``.

    The history starts with the blank id (sentence start), as int4rt's LM fusion feeds it.
    """

    def __init__(self, config: LmConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(config.vocab), config.embedding_size)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, config.num_layers,
                            batch_first=True)
        self.out = nn.Linear(config.hidden_size, len(config.vocab))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, N, V] of the next token after each prefix of ``tokens`` [B, N]."""
        out, _ = self.lstm(self.embedding(tokens))
        return self.out(out)
