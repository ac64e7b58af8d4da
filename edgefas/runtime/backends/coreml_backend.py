"""Core ML on macOS (coremltools ``MLModel.predict``); elsewhere it refuses with the reason.

coremltools converts on Linux but its prediction runtime exists only on macOS, so this
backend is for Macs (and for checking an export on a Mac before it ships to iPhones, where
the app calls Core ML directly). The face detector stays on onnxruntime (see BACKENDS).
"""
from __future__ import annotations

import platform
import warnings
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailable


class CoreMlModel:
    def __init__(self, path: Path, threads: int = 1) -> None:
        if platform.system() != "Darwin":
            raise BackendUnavailable(f"the coreml backend predicts only on macOS; this is "
                                     f"{platform.system()} (convert here, run on a Mac/iPhone)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # untested-version notices from coremltools
                import coremltools as ct
        except ImportError as exc:
            raise BackendUnavailable(
                "the coreml backend needs coremltools: pip install 'edgefas[coreml]'") from exc
        # threads: Core ML schedules its own compute units; ALL lets it use the Neural Engine.
        self._model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.ALL)
        desc = self._model.get_spec().description
        self.input_name: str = desc.input[0].name
        self._outputs = [o.name for o in desc.output]
        shape = desc.input[0].type.multiArrayType.shape
        self.input_shape = tuple(int(d) for d in shape)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        # The mlprogram has a static batch of 1, like the .tflite files.
        rows = [self._model.predict({self.input_name: np.ascontiguousarray(x[i:i + 1], np.float32)})
                for i in range(len(x))]
        return [np.concatenate([np.asarray(r[k], np.float32).reshape(1, -1) for r in rows])
                .reshape((len(x),) + np.asarray(rows[0][k]).shape[1:]) for k in self._outputs]


def load(path: Path, threads: int = 1) -> CoreMlModel:
    return CoreMlModel(path, threads)
