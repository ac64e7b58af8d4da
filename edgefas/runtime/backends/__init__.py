"""Inference backends behind one small interface, chosen by name from a table.

Each backend module imports its engine lazily and raises :class:`BackendUnavailable` with
the ``pip install`` line when the engine is missing, so ``import edgefas`` needs none of them.
"""
from __future__ import annotations

import importlib
import importlib.util
import platform
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ...errors import BackendUnavailable, unknown_name


class Model(Protocol):
    """A loaded network: one float32 input, a list of float32 outputs."""

    input_name: str
    input_shape: tuple[int | str | None, ...]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run on a batch ``x`` (float32) and return every output as a numpy array."""
        ...


#: Classifier precisions a bundle's exports come in.
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BackendSpec:
    """One row of the backend table."""

    name: str
    module: str          # module in this package with a ``load(path, threads) -> Model``
    file_key: str        # which model file of a bundle it reads ("onnx", "tflite", ...)
    engine: str          # the Python module of its inference engine
    pip_extra: str       # what installs that engine
    export_target: str   # the export target whose files it runs
    # Where the face detector runs when this engine has no file for it (Core ML, TensorRT:
    # BlazeFace stays on onnxruntime's CPU there; it is ~2 ms).
    face_backend: str | None = None
    runs_on: str | None = None  # platform.system() the engine predicts on, when only one

    def model_key(self, precision: str, have: Container[str] = ()) -> str:
        """Manifest key of the classifier this backend runs at ``precision``; ``have``: the
        bundle's classifier keys. fp32 for an engine that reads ONNX is the bundle's own graph,
        unless the bundle holds this engine's own gated fp32 file (an OpenVINO IR)."""
        own = f"{self.export_target}_{precision}"
        if precision == "fp32" and self.file_key == "onnx" and own not in have:
            return "onnx"
        return own

    @property
    def face(self) -> tuple[str, str]:
        """(manifest key, backend) of the face detector model."""
        if self.face_backend is None:
            return self.file_key, self.name
        return BACKENDS[self.face_backend].file_key, self.face_backend

    def installed(self) -> bool:
        if self.runs_on is not None and platform.system() != self.runs_on:
            return False
        return importlib.util.find_spec(self.engine) is not None


BACKENDS: dict[str, BackendSpec] = {b.name: b for b in (
    BackendSpec("onnxruntime", "onnxruntime_backend", "onnx", "onnxruntime", "edgefas", "onnx"),
    BackendSpec("openvino", "openvino_backend", "onnx", "openvino", "edgefas[openvino]",
                "openvino"),
    BackendSpec("litert", "litert_backend", "tflite", "ai_edge_litert", "edgefas[litert]",
                "tflite"),
    BackendSpec("coreml", "coreml_backend", "coreml", "coremltools", "edgefas[coreml]", "coreml",
                face_backend="onnxruntime", runs_on="Darwin"),
    BackendSpec("tensorrt", "tensorrt_backend", "tensorrt", "tensorrt", "edgefas[tensorrt]",
                "tensorrt", face_backend="onnxruntime", runs_on="Linux"),
)}
#: ``backend="auto"``: the first installed one the bundle has a classifier file for. Device
#: engines first (they are there only where they are the point), then LiteRT, whose XNNPACK
#: kernels ran the whole pipeline fastest on x86 here too (benchmarks/results/bench_targets.md:
#: 7.89 vs 11.09 ms p50 for onnxruntime, 2 threads) but whose classifier a bundle holds only
#: after `edgefas export --target tflite`, then the portable default.
AUTO_ORDER = ("tensorrt", "coreml", "litert", "onnxruntime", "openvino")


def available_backends() -> list[str]:
    """Names of the backends whose engine imports (and predicts) on this machine."""
    return [name for name, spec in BACKENDS.items() if spec.installed()]


def why_unavailable(name: str) -> str:
    """A one-line reason a backend cannot run here (for skips and error messages)."""
    spec = get_backend(name)
    if spec.runs_on is not None and platform.system() != spec.runs_on:
        return f"{name} predicts only on {spec.runs_on}, this is {platform.system()}"
    return f"{name} is not installed here (pip install '{spec.pip_extra}')"


def auto_backend(has_classifier: Callable[[str], bool], precision: str = "fp32") -> str:
    """The backend ``backend="auto"`` means, given which classifier keys a bundle holds."""
    for name in AUTO_ORDER:
        spec = BACKENDS[name]
        if spec.installed() and has_classifier(spec.model_key(precision)):
            return name
    raise BackendUnavailable(f"no installed backend has a {precision} classifier in this bundle "
                             f"(installed: {', '.join(available_backends()) or 'none'})")


def get_backend(name: str) -> BackendSpec:
    """Look a backend up by name; an unknown name suggests the closest known one."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(unknown_name("backend", name, sorted(BACKENDS))) from None


def load_model(path: str | Path, backend: str = "onnxruntime", *, threads: int = 1) -> Model:
    """Load a model file with the named backend.

    Args:
        path: the model file (its format must match the backend).
        backend: a name from :data:`BACKENDS`.
        threads: intra-op threads; 1 is the fastest on a busy 2-core device.
    """
    spec = get_backend(backend)
    mod = importlib.import_module(f"{__name__}.{spec.module}")
    return mod.load(Path(path), threads=threads)
