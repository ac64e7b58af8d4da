"""Export targets as data: one row per format, with its precisions and parity tolerances.

Every exported classifier is gated against the bundle's fp32 ONNX graph (itself gated against
PyTorch at export, max |diff| <= 1e-4): fp32 targets by max |diff| of the live logit on real
devel faces, reduced precisions by decision agreement and by APCER/BPCER at the bundle
threshold, each within ``max_rate_shift`` (0.5 percentage points) of the fp32 reference.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExportError, unknown_name


@dataclass(frozen=True)
class Target:
    """One export format."""

    name: str                               # CLI value
    backend: str                            # runtime backend that runs the result
    precisions: tuple[str, ...]
    needs: tuple[str, ...]                  # Python modules the conversion imports
    pip_extra: str
    convert: Callable[[Path, Path, str, np.ndarray], Path]  # (onnx, out_dir, precision, calib)
    fp32_atol: float = 1e-4
    max_rate_shift: float = 0.005           # APCER/BPCER may move by 0.5 pp at most

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.needs)

    def model_key(self, precision: str) -> str:
        """The manifest key of this target's classifier file, e.g. ``openvino_int8``."""
        return "onnx" if (self.name, precision) == ("onnx", "fp32") else f"{self.name}_{precision}"


def _onnx_convert(src: Path, out_dir: Path, precision: str, calib: np.ndarray) -> Path:
    from .onnx_quantize import quantize_onnx_int8

    if precision != "int8":
        raise ExportError(f"onnx {precision}: the fp32 graph is the bundle's own classifier.onnx")
    return quantize_onnx_int8(src, out_dir / "classifier_int8.onnx", calib)


def _openvino_convert(src: Path, out_dir: Path, precision: str, calib: np.ndarray) -> Path:
    from .openvino_export import export_openvino

    return export_openvino(src, out_dir / "openvino" / f"classifier_{precision}.xml", precision,
                           calib)


TARGETS: dict[str, Target] = {
    "onnx": Target("onnx", "onnxruntime", ("int8",), ("onnxruntime",), "edgefas", _onnx_convert),
    "openvino": Target("openvino", "openvino", ("fp32", "fp16", "int8"), ("openvino", "nncf"),
                       "edgefas[export]", _openvino_convert),
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ExportError(unknown_name("export target", name, list(TARGETS))) from None
