"""``convert``: checkpoint + config (+ calibration) → model file + report, all or nothing.

Steps (docs/CONVERT.md): read the configuration (with command-line bit widths), the
checkpoint (renamed by the mapping file, checked against the configuration), the calibration
set; build the float model, calibrate, quantize (build.py), evaluate (report.py); then write
the model file (``save_model``, which runs ``check_model``, FORMAT.md §4), the JSON report and
the optional PNG to temporary files in their target folders and rename them into place only
when everything succeeded. On any error no new file is left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from int4rt.model.config import LmConfig, ModelConfig
from int4rt.model.container import save_model
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel

from .build import Builder, cell_clips
from .calibration import Utterance, calibrate, cmvn_statistics, read_calibration_set
from .checkpoint import read_checkpoint
from .errors import ConvertError
from .float_model import FloatLm, float_model
from .frontend_check import warn_frontend_mismatch
from .layout import Tensors, lstm_layers
from .mapping import Mapping, load_mapping
from .options import ConvertOptions, load_adjusted_config
from .report import (
    build_report,
    check_plot_available,
    evaluate,
    format_table,
    write_plot,
    write_report,
)


@dataclass(frozen=True, eq=False)
class ConvertResult:
    """The integer model written, its report (as written) and the files."""

    model: RnntModel | LmModel
    report: dict[str, Any]
    model_path: Path
    report_path: Path
    plot_path: Path | None

    def table(self) -> str:
        """The report as a terminal table."""
        return format_table(self.report)


def _cmvn(config: ModelConfig, tensors: Tensors, utterances: list[Utterance]
          ) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """Global CMVN statistics (float32 values) and where they came from."""
    if isinstance(config, LmConfig) or not config.frontend.cmvn:
        return None, "none"
    mean, std = tensors.get("frontend.cmvn_mean"), tensors.get("frontend.cmvn_std")
    if (mean is None) != (std is None):
        missing = "frontend.cmvn_std" if std is None else "frontend.cmvn_mean"
        raise ConvertError(f"missing tensor {missing!r}: the checkpoint has only one of the two "
                           "CMVN statistics")
    if mean is not None and std is not None:
        if not np.all(np.float32(std) > 0):
            raise ConvertError("tensor 'frontend.cmvn_std' has entries <= 0")
        return (mean.astype(np.float32), std.astype(np.float32)), "checkpoint"
    if utterances:
        return cmvn_statistics(utterances), "calibration data"
    raise ConvertError("config frontend.cmvn is true, but the checkpoint has no "
                       "frontend.cmvn_mean/frontend.cmvn_std and there is no calibration data "
                       "(--calib) to estimate them from")


def _check_paths(options: ConvertOptions) -> list[Path]:
    targets = [Path(options.output), options.report_path]
    if options.plot:
        targets.append(options.plot_path)
    for target in targets:
        if target.is_dir() or not target.parent.is_dir():
            raise ConvertError(f"cannot write {str(target)!r}: " + (
                "it is a directory" if target.is_dir() else f"no folder {str(target.parent)!r}"))
    checkpoint = Path(options.checkpoint)
    if any(t.exists() and checkpoint.exists() and os.path.samefile(t, checkpoint)
           for t in targets):
        raise ConvertError(f"an output path is the checkpoint {str(checkpoint)!r} itself")
    if len({t.resolve() for t in targets}) != len(targets):
        raise ConvertError("the model, report and plot paths must differ")
    return targets


def _new_file_mode() -> int:
    """0666 less the process umask: what ``open(path, "w")`` would have created."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def staged(targets: list[Path]) -> Iterator[list[Path]]:
    """Temporary files beside ``targets``; renamed onto them on success, removed on error."""
    temps: list[Path] = []
    try:
        for target in targets:
            handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                            dir=target.parent)
            os.close(handle)
            temps.append(Path(name))
        yield temps
        mode = _new_file_mode()
        for temp, target in zip(temps, targets, strict=True):
            os.chmod(temp, mode)  # mkstemp makes 0600 files; give them the usual permissions
            os.replace(temp, target)
    except OSError as error:
        raise ConvertError(f"cannot write the output: {error}") from None
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def convert(options: ConvertOptions) -> ConvertResult:
    """Convert ``options.checkpoint`` into an int4rt model file, with its report."""
    options.check()
    if options.plot:
        check_plot_available()
    targets = _check_paths(options)
    config = load_adjusted_config(options)
    mapping = load_mapping(options.mapping) if options.mapping else Mapping()
    warn_frontend_mismatch(mapping, config)
    tensors = Tensors(mapping.rename(read_checkpoint(options.checkpoint)), config)
    utterances = (read_calibration_set(options.calibration, config, options.calibration_limit)
                  if options.calibration else [])
    cmvn, cmvn_source = _cmvn(config, tensors, utterances)
    clips = cell_clips(tensors, options.quant.cell_clip, lstm_layers(config))
    fmodel = float_model(config, tensors, clips, cmvn)
    calibration = calibrate(fmodel, utterances, config.vocab, options.progress) \
        if utterances else None
    builder = Builder(config, tensors, calibration, options.quant, clips)
    model = builder.lm(fmodel) if isinstance(fmodel, FloatLm) else builder.rnnt(fmodel)
    count = min(options.eval_utterances, len(utterances))
    evaluation = evaluate(model, fmodel, builder.info, utterances[:count],
                          calibration.labels[:count]) if calibration and count else None
    quant = config.quantization
    context: dict[str, Any] = {
        "inputs": {"checkpoint": str(options.checkpoint), "config": str(options.config),
                   "mapping": None if options.mapping is None else str(options.mapping),
                   "calibration": None if options.calibration is None
                   else str(options.calibration)},
        "output": str(options.output),
        "options": {
            "weight_bits": quant.weight_bits, "activation_bits": quant.activation_bits,
            "activation_signed": quant.activation_signed,
            "overrides": {layer: {key: value for key, value in vars(entry).items()
                                  if value is not None}
                          for layer, entry in quant.overrides.items()},
            **vars(options.quant),
        },
        "calibration": {
            "utterances": len(utterances), "frames": calibration.frames if calibration else 0,
            "labels": calibration.label_source if calibration else "none", "cmvn": cmvn_source,
        },
    }
    with staged(targets) as temps:
        save_model(model, temps[0])
        file_bytes = temps[0].stat().st_size
        fp32_bytes = 4 * tensors.element_count()
        context["sizes"] = {"file_bytes": file_bytes, "fp32_bytes": fp32_bytes,
                            "float_parameters": tensors.element_count(),
                            "compression_ratio": round(fp32_bytes / file_bytes, 4)}
        report = build_report(model, builder.info, evaluation, context)
        write_report(report, temps[1])
        if options.plot:
            write_plot(report, temps[2])
    return ConvertResult(model, report, targets[0], targets[1],
                         targets[2] if options.plot else None)
