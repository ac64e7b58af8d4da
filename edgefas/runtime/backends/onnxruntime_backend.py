"""ONNX Runtime on the CPU: the default backend and the one the base install brings."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import BackendUnavailable


class OnnxRuntimeModel:
    """An ``onnxruntime.InferenceSession``; ``run`` is safe to call from several threads."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a base dependency
            raise BackendUnavailable("onnxruntime is not installed: pip install onnxruntime") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Spinning threads steal the other core from the camera/decoder on a 2-core device.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), sess_options=opts,
                                             providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape = tuple(inp.shape)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})


def load(path: Path, threads: int = 1) -> OnnxRuntimeModel:
    return OnnxRuntimeModel(path, threads)
