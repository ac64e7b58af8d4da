"""TensorRT engines, built on the NVIDIA device that will run them (Jetson or x86 + GPU).

Engines are specific to the GPU and the TensorRT version, so this runs on the target: it
parses the bundle's ONNX graph with TensorRT's ONNX parser; fp16 sets the FP16 builder flag;
int8 parses the onnxruntime QDQ-quantized graph (explicit quantization, calibrated on devel
faces here) with INT8 + FP16 enabled. (The other route, torch-tensorrt from the bundle's
safetensors, pairs 1:1 with a torch version and is left to integrators; see
docs/targets/tensorrt.md.) Without libnvinfer the export stops with the reason.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..runtime.backends.tensorrt_backend import require_tensorrt

#: Batch sizes the engine's optimisation profile covers (min, opt, max).
BATCH_PROFILE = (1, 1, 16)


def network_flags(trt) -> int:
    """``create_network`` flags: explicit batch, which TensorRT 10 always uses and 8.x (JetPack
    5 and 6.0 on Orin) must be asked for: its default implicit-batch network is one the ONNX
    parser refuses."""
    if int(str(trt.__version__).split(".")[0]) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def build_engine(onnx_path: Path, dst: Path, precision: str, calib: np.ndarray) -> Path:
    """Serialize an engine for ``onnx_path`` at ``precision`` (fp16 or int8) into ``dst``."""
    require_tensorrt()
    import tensorrt as trt

    with tempfile.TemporaryDirectory() as tmp:
        src = onnx_path
        if precision == "int8":
            from .onnx_quantize import quantize_onnx_int8

            src = quantize_onnx_int8(onnx_path, Path(tmp) / "qdq.onnx", calib)
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(network_flags(trt))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(Path(src).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ExportError(f"TensorRT could not parse {src}: {errors}")
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        inp = network.get_input(0)
        chw = tuple(calib.shape[1:])
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, *[(b, *chw) for b in BATCH_PROFILE])
        config.add_optimization_profile(profile)
        engine = builder.build_serialized_network(network, config)
        if engine is None:
            raise ExportError(f"TensorRT failed to build a {precision} engine from {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(engine))
    return dst
