"""Export targets as data: one row per format, with its precisions, what it converts from,
what it needs installed, and its parity tolerances. Device presets live in ``presets.py``.

Every exported classifier is gated against PyTorch (or, for bundles without PyTorch weights,
the bundle's fp32 ONNX graph, itself gated against PyTorch at <= 1e-4): fp32 exports by max
|diff| of the live logit on real devel faces, reduced precisions by decision agreement and by
APCER/BPCER at the bundle threshold, each within ``max_rate_shift`` (0.5 points) of PyTorch.
"""
from __future__ import annotations

import importlib.util
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, ExportError, unknown_name
from .parity import FP32_ATOL
from .source import ExportSource

#: What building the bundle's PyTorch model takes (converters that read PyTorch need them).
TORCH_MODULES = ("torch", "timm", "safetensors")

Convert = Callable[[ExportSource, Path, str, np.ndarray], Path]  # (source, out, precision, calib)


@dataclass(frozen=True)
class Target:
    """One export format."""

    name: str                               # CLI value
    backend: str                            # runtime backend that runs (and gates) the result
    precisions: tuple[str, ...]
    needs: tuple[str, ...]                  # Python modules the conversion imports
    pip_extra: str
    convert: Convert
    source: str = "onnx"                    # "onnx" or "torch": what the conversion reads
    predicts_on: str | None = None          # platform.system() the result can run on, if one
    precheck: Callable[[], None] | None = None  # raises BackendUnavailable with the reason
    fp32_atol: float = FP32_ATOL             # see edgefas.export.parity
    max_rate_shift: float = 0.005           # APCER/BPCER may move by 0.5 pp at most
    note: str = ""

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.needs)

    def can_predict_here(self) -> bool:
        return self.predicts_on is None or platform.system() == self.predicts_on

    def model_key(self, precision: str) -> str:
        """The manifest key of this target's classifier file, e.g. ``openvino_int8``."""
        return "onnx" if (self.name, precision) == ("onnx", "fp32") else f"{self.name}_{precision}"


def _onnx_convert(src: ExportSource, out_dir: Path, precision: str, calib: np.ndarray) -> Path:
    from .onnx_quantize import convert_onnx_fp16, quantize_onnx_int8

    if precision == "fp32":
        return src.onnx  # the bundle's own graph: the gate re-checks it against PyTorch
    if precision == "fp16":
        return convert_onnx_fp16(src.onnx, out_dir / "classifier_fp16.onnx")
    return quantize_onnx_int8(src.onnx, out_dir / "classifier_int8.onnx", calib)


def _openvino_convert(src: ExportSource, out_dir: Path, precision: str, calib: np.ndarray) -> Path:
    from .openvino_export import export_openvino

    return export_openvino(src.onnx, out_dir / "openvino" / f"classifier_{precision}.xml",
                           precision, calib)


def _tflite_convert(src: ExportSource, out_dir: Path, precision: str, calib: np.ndarray) -> Path:
    from .tflite_export import export_tflite

    return export_tflite(src.torch_model(), out_dir / f"classifier_{precision}.tflite", precision,
                         calib)


def _coreml_convert(src: ExportSource, out_dir: Path, precision: str, calib: np.ndarray) -> Path:
    from .coreml_export import export_coreml

    return export_coreml(src.torch_model(), out_dir / f"classifier_{precision}.mlpackage",
                         precision, calib)


def _tensorrt_precheck() -> None:
    from ..runtime.backends.tensorrt_backend import require_tensorrt

    require_tensorrt()


def _tensorrt_convert(src: ExportSource, out_dir: Path, precision: str, calib: np.ndarray) -> Path:
    from .tensorrt_export import build_engine

    return build_engine(src.onnx, out_dir / f"classifier_{precision}.engine", precision, calib)


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("onnx", "onnxruntime", ("fp32", "fp16", "int8"), ("onnxruntime",), "edgefas",
           _onnx_convert, note="int8: onnxruntime static QDQ, per-channel 7-bit weights"),
    Target("openvino", "openvino", ("fp32", "fp16", "int8"), ("openvino", "nncf"),
           "edgefas[openvino-export]", _openvino_convert, note="int8: NNCF, TRANSFORMER preset"),
    Target("tflite", "litert", ("fp32", "int8"), ("litert_torch", "ai_edge_litert", *TORCH_MODULES),
           "edgefas[export]", _tflite_convert, source="torch",
           note="litert-torch; int8: PT2E, symmetric per-channel"),
    Target("coreml", "coreml", ("fp16", "fp32"), ("coremltools", *TORCH_MODULES), "edgefas[export]",
           _coreml_convert, source="torch", predicts_on="Darwin",
           note="mlprogram, iOS 17; converts anywhere, predicts (and is gated) on macOS only"),
    Target("tensorrt", "tensorrt", ("fp16", "int8"), ("tensorrt", "cuda"), "edgefas[tensorrt]",
           _tensorrt_convert, precheck=_tensorrt_precheck,
           note="engine built on the device that runs it (ONNX parser)"),
)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ExportError(unknown_name("export target", name, list(TARGETS))) from None


def check_target(tgt: Target, precision: str) -> None:
    """Refuse a precision the target lacks, or a target whose converter is missing here."""
    if precision not in tgt.precisions:
        raise ExportError(f"{tgt.name} supports {', '.join(tgt.precisions)}, not {precision}")
    if tgt.precheck is not None:
        tgt.precheck()
    if not tgt.available():
        missing = [m for m in tgt.needs if importlib.util.find_spec(m) is None]
        raise BackendUnavailable(f"exporting to {tgt.name} needs {', '.join(missing)}, which is "
                                 f"not installed here: pip install '{tgt.pip_extra}'")
