"""TensorRT engines on NVIDIA GPUs (Jetson, x86 + GPU), when libnvinfer is present.

Device memory goes through cuda-python's runtime bindings (``cuda.bindings.runtime``), not
torch: the runtime never imports torch. Engines are built per device by
``edgefas export BUNDLE --target tensorrt`` run on that device. Not exercised on this
project's CI machines, which have no GPU or libnvinfer; the tests skip it with the reason.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailable


def find_libnvinfer() -> str | None:
    """The loadable libnvinfer, or None (TensorRT 8-11 sonames, then the linker's search)."""
    for name in ("libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"):
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return ctypes.util.find_library("nvinfer")


def require_tensorrt() -> None:
    """Raise :class:`BackendUnavailable` with the reason unless TensorRT can build here."""
    if find_libnvinfer() is None:
        raise BackendUnavailable(
            "tensorrt: no libnvinfer (NVIDIA TensorRT) on this machine, so no engine can be "
            "built or run here. Engines are built on the device that runs them: on a Jetson "
            "(JetPack ships TensorRT) or an NVIDIA GPU machine with TensorRT, run this same "
            "command there (docs/targets/tensorrt.md)")
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # ImportError, or the wheel failing to load its libraries
        raise BackendUnavailable(f"tensorrt: libnvinfer is here but the Python bindings do not "
                                 f"import ({exc}); pip install 'edgefas[tensorrt]'") from exc


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRtModel:
    """One execution context and CUDA stream per calling thread."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        require_tensorrt()
        try:
            from cuda.bindings import runtime as cudart
        except ImportError as exc:
            raise BackendUnavailable("the tensorrt backend needs cuda-python for device memory: "
                                     "pip install 'edgefas[tensorrt]'") from exc
        import tensorrt as trt

        self._trt, self._cudart = trt, cudart
        self._engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(
            Path(path).read_bytes())
        if self._engine is None:
            raise BackendUnavailable(f"{path}: TensorRT could not load this engine (built for "
                                     "another GPU or TensorRT version? rebuild it here)")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.input_name: str = next(n for n in names if self._engine.get_tensor_mode(n) == mode)
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) != mode]
        self.input_shape = tuple(self._engine.get_tensor_shape(self.input_name))
        # the largest batch the engine's optimisation profile takes (edgefas builds 1..16);
        # Detector.batch() may send more faces than that, in one call
        try:
            self.max_batch = max(1, int(self._engine.get_tensor_profile_shape(self.input_name, 0)[2][0]))
        except Exception:   # an engine without a profile (static shape)
            self.max_batch = max(1, int(self.input_shape[0]))
        self._local = threading.local()

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        if len(x) > self.max_batch:
            parts = [self._run(x[i:i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
            return [np.concatenate(outs) for outs in zip(*parts)]
        return self._run(x)

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        cudart = self._cudart
        loc = self._local
        if getattr(loc, "ctx", None) is None:
            loc.ctx = self._engine.create_execution_context()
            loc.stream = _check(cudart.cudaStreamCreate())
        x = np.ascontiguousarray(x, np.float32)
        ctx = loc.ctx
        if ctx.set_input_shape(self.input_name, x.shape) is False:   # TensorRT 10 says so, not raises
            raise RuntimeError(f"TensorRT engine does not take an input of shape {x.shape}")
        host = {self.input_name: x}
        for n in self._outputs:
            host[n] = np.empty(tuple(ctx.get_tensor_shape(n)), np.float32)
        dev = {n: _check(cudart.cudaMalloc(a.nbytes)) for n, a in host.items()}
        try:
            h2d, d2h = (cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                        cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)
            _check(cudart.cudaMemcpyAsync(dev[self.input_name], x.ctypes.data, x.nbytes, h2d,
                                          loc.stream))
            for n, ptr in dev.items():
                ctx.set_tensor_address(n, int(ptr))
            if not ctx.execute_async_v3(loc.stream):
                raise RuntimeError("TensorRT execution failed")
            for n in self._outputs:
                _check(cudart.cudaMemcpyAsync(host[n].ctypes.data, dev[n], host[n].nbytes, d2h,
                                              loc.stream))
            _check(cudart.cudaStreamSynchronize(loc.stream))
        finally:
            for ptr in dev.values():
                cudart.cudaFree(ptr)
        return [host[n] for n in self._outputs]


def load(path: Path, threads: int = 1) -> TensorRtModel:
    return TensorRtModel(path, threads)
