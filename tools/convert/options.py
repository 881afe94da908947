"""Conversion options and the configuration they adjust (bit widths, per-layer overrides)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from int4rt.errors import Int4rtError
from int4rt.model.config import (
    BUILTIN_CONFIGS,
    ModelConfig,
    builtin_config_text,
    parse_config,
    strict_json,
)
from int4rt.options import ACTIVATION_RANGES, CELL_SCALES, GRANULARITIES, WEIGHT_SCALES

from .build import QuantOptions
from .errors import ConvertError

_OVERRIDE = re.compile(r"([A-Za-z0-9_.]+)=((?:[wa]\d+)(?:,[wa]\d+)?)")


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``int4rt convert CHECKPOINT`` takes (docs/CONVERT.md).

    ``overrides`` are ``LAYER=wN``, ``LAYER=aN`` or ``LAYER=wN,aN`` strings (FORMAT.md §6.2
    layer names), applied over the config's ``quantization.overrides``; ``weight_bits`` and
    ``activation_bits`` replace the config's defaults. ``report`` defaults to
    ``<output stem>.report.json`` next to the output; ``plot`` writes
    ``<output stem>.sqnr.png`` too. ``eval_utterances`` calibration utterances are run through
    the integer model for the activation SQNRs.
    """

    checkpoint: Path
    config: Path
    output: Path
    mapping: Path | None = None
    calibration: Path | None = None
    calibration_limit: int | None = None
    weight_bits: int | None = None
    activation_bits: int | None = None
    overrides: tuple[str, ...] = ()
    quant: QuantOptions = field(default_factory=QuantOptions)
    report: Path | None = None
    plot: bool = False
    eval_utterances: int = 8
    progress: bool = False

    def check(self) -> None:
        """Raise :class:`ConvertError` naming the first option out of its domain."""
        quant = self.quant
        for name, value, allowed in (("weight scale", quant.weight_scale, WEIGHT_SCALES),
                                     ("granularity", quant.granularity, GRANULARITIES),
                                     ("activation range", quant.activation_range,
                                      ACTIVATION_RANGES),
                                     ("cell scale", quant.cell_scale, CELL_SCALES)):
            if value not in allowed:
                raise ConvertError(f"unknown {name} {value!r}; expected one of "
                                   f"{', '.join(allowed)}")
        if not 50.0 < quant.percentile <= 100.0:
            raise ConvertError(f"percentile must be in (50, 100], got {quant.percentile!r}")
        if quant.cell_clip is not None and not quant.cell_clip > 0:
            raise ConvertError(f"cell clip must be positive, got {quant.cell_clip!r}")
        if self.calibration_limit is not None and self.calibration_limit < 1:
            raise ConvertError(f"calibration limit must be >= 1, got {self.calibration_limit}")
        if self.eval_utterances < 0:
            raise ConvertError(f"evaluation utterances must be >= 0, got {self.eval_utterances}")

    @property
    def report_path(self) -> Path:
        """Where the JSON report goes."""
        return self.report or self.output.with_name(self.output.stem + ".report.json")

    @property
    def plot_path(self) -> Path:
        """Where the PNG goes (with ``plot``)."""
        return self.output.with_name(self.output.stem + ".sqnr.png")


def parse_override(text: str) -> tuple[str, dict[str, int]]:
    """``LAYER=w8,a4`` → (``LAYER``, {"weight_bits": 8, "activation_bits": 4})."""
    match = _OVERRIDE.fullmatch(text)
    keys = {"w": "weight_bits", "a": "activation_bits"}
    if match is None:
        raise ConvertError(f"override {text!r}: expected LAYER=wN, LAYER=aN or LAYER=wN,aN "
                           "(e.g. encoder.layer0=w8,a8)")
    parts = match.group(2).split(",")
    if len({part[0] for part in parts}) != len(parts):
        raise ConvertError(f"override {text!r}: sets the same bit width twice")
    return match.group(1), {keys[part[0]]: int(part[1:]) for part in parts}


def load_adjusted_config(options: ConvertOptions) -> ModelConfig:
    """The configuration file with the options' bit widths and overrides applied, checked."""
    name = str(options.config)
    if name in BUILTIN_CONFIGS and not Path(name).exists():  # as load_config: a shipped one
        text = builtin_config_text(name)
    else:
        try:
            text = Path(options.config).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise ConvertError(f"cannot read config {name!r}: {reason}") from None
    data: Any = copy.deepcopy(strict_json(text, f"config {str(options.config)!r}"))
    quant = data.get("quantization") if isinstance(data, dict) else None
    if isinstance(quant, dict):
        for key in ("weight_bits", "activation_bits"):
            if getattr(options, key) is not None:
                quant[key] = getattr(options, key)
        for text_override in options.overrides:
            layer, values = parse_override(text_override)
            overrides = quant.setdefault("overrides", {})
            if isinstance(overrides, dict):
                entry = overrides.setdefault(layer, {})
                if isinstance(entry, dict):
                    entry.update(values)
    try:
        return parse_config(data)
    except ConvertError:
        raise
    except Int4rtError as error:
        adjusted = options.overrides or options.weight_bits or options.activation_bits
        raise ConvertError(f"{error}{' (with the command-line bit widths)' if adjusted else ''}"
                           ) from None
