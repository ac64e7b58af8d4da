"""OpenVINO on the CPU, reading the bundle's ONNX files directly (no separate export).

Precision is pinned to f32: on CPUs with bf16 support OpenVINO otherwise runs in bf16 by
default, which moves scores by up to ~1e-3 and can flip decisions near the threshold.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailable


class OpenVinoModel:
    """A compiled OpenVINO model. Each thread gets its own infer request (requests are not
    thread-safe; the compiled model is), so one instance may be shared across threads."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailable(
                "the openvino backend needs OpenVINO: pip install 'edgefas[openvino]'") from exc
        core = ov.Core()
        model = core.read_model(str(path))
        inp = model.inputs[0]
        # Dynamic batch in the ONNX file: keep it dynamic so batch calls work.
        self.input_name: str = inp.get_any_name()
        self.input_shape = tuple(str(d) for d in inp.get_partial_shape())
        self._compiled = core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"})
        self._local = threading.local()

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        req = getattr(self._local, "request", None)
        if req is None:
            req = self._local.request = self._compiled.create_infer_request()
        req.infer({0: np.ascontiguousarray(x, np.float32)})
        return [np.array(req.get_output_tensor(i).data)
                for i in range(len(self._compiled.outputs))]


def load(path: Path, threads: int = 1) -> OpenVinoModel:
    return OpenVinoModel(path, threads)
