"""Inference backends behind one small interface, chosen by name from a table.

Each backend module imports its engine lazily and raises :class:`BackendUnavailable` with
the ``pip install`` line when the engine is missing, so ``import edgefas`` needs none of them.
"""
from __future__ import annotations

import importlib
import importlib.util
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


@dataclass(frozen=True)
class BackendSpec:
    """One row of the backend table."""

    name: str
    module: str          # module in this package with a ``load(path, threads) -> Model``
    file_key: str        # which model file of a bundle it reads ("onnx", "tflite", ...)
    engine: str          # the Python module of its inference engine
    pip_extra: str       # what installs that engine
    export_target: str   # the export target whose reduced-precision files it runs

    def model_key(self, precision: str) -> str:
        """Manifest key of the classifier this backend runs at ``precision``."""
        return self.file_key if precision == "fp32" else f"{self.export_target}_{precision}"


BACKENDS: dict[str, BackendSpec] = {
    "onnxruntime": BackendSpec("onnxruntime", "onnxruntime_backend", "onnx", "onnxruntime", "edgefas",
                               "onnx"),
    "openvino": BackendSpec("openvino", "openvino_backend", "onnx", "openvino",
                            "edgefas[openvino]", "openvino"),
}


def available_backends() -> list[str]:
    """Names of the backends whose engine imports on this machine."""
    return [name for name, spec in BACKENDS.items()
            if importlib.util.find_spec(spec.engine) is not None]


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
