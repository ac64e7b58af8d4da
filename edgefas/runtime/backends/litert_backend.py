"""LiteRT (TensorFlow Lite) on the CPU with XNNPACK, through ``ai_edge_litert``.

``tflite-runtime`` is not used: its last release breaks under numpy 2 (toolchain notes).
The :class:`~edgefas.runtime.backends.Model` interface is NCHW float32 in, float32 out; this
wrapper bridges the two things .tflite files do differently: MediaPipe's face detector takes
NHWC input (transposed here), and int8 models take and give int8 tensors (quantized and
dequantized here with the scale/zero point stored in the file). Models have a static batch of
1, so a batch is run one row at a time (what a phone does with one face per frame anyway).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailable


class LiteRtModel:
    """One ``Interpreter`` per calling thread (interpreters are not thread-safe)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise BackendUnavailable(
                "the litert backend needs LiteRT: pip install 'edgefas[litert]'") from exc
        self._path, self._threads, self._cls = str(path), threads, Interpreter
        self._local = threading.local()
        it = self._interpreter()
        inp = it.get_input_details()[0]
        self.input_name: str = inp["name"]
        shape = tuple(int(d) for d in inp["shape"])
        # A 4-D input with 3 or 6 channels last and not first is NHWC.
        self._nhwc = len(shape) == 4 and shape[-1] in (3, 6) and shape[1] not in (3, 6)
        self.input_shape = (shape[0], shape[3], shape[1], shape[2]) if self._nhwc else shape
        # Outputs in the order of their names so files from different converters line up
        # (MediaPipe: classificators / regressors; the detector asks for regressors first).
        outs = it.get_output_details()
        self._out_order = [d["index"] for d in sorted(outs, key=lambda d: d["name"] != "regressors")]

    def _interpreter(self):
        it = getattr(self._local, "it", None)
        if it is None:
            it = self._cls(model_path=self._path, num_threads=self._threads)
            it.allocate_tensors()
            self._local.it = it
        return it

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        it = self._interpreter()
        x = np.asarray(x, np.float32)
        if self._nhwc:
            x = x.transpose(0, 2, 3, 1)
        inp = it.get_input_details()[0]
        rows = []
        for i in range(len(x)):
            it.set_tensor(inp["index"], _quantize(x[i:i + 1], inp))
            it.invoke()
            details = {d["index"]: d for d in it.get_output_details()}
            rows.append([_dequantize(it.get_tensor(k), details[k]) for k in self._out_order])
        return [np.concatenate([r[j].reshape((1,) + r[j].shape[1:] if r[j].ndim else (1,))
                                for r in rows]) for j in range(len(self._out_order))]


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return np.ascontiguousarray(x)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y.copy()  # get_tensor returns a view into the interpreter's buffer
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def load(path: Path, threads: int = 1) -> LiteRtModel:
    return LiteRtModel(path, threads)
