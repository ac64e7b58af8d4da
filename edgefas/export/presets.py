"""Device presets: ``edgefas export BUNDLE --device D`` picks the formats and precisions.

Data, like the target table: each preset lists the (target, precision) exports made for it,
in order; the first is what the device's backend should load. Choices follow what each
engine runs fastest there and what passed the parity gate on devel (docs/targets/*.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ExportError, unknown_name


@dataclass(frozen=True)
class Preset:
    name: str
    exports: tuple[tuple[str, str], ...]   # (target, precision), first = the one to load
    backend: str
    doc: str                               # docs/targets/<doc>.md
    why: str


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("jetson-orin", (("tensorrt", "fp16"), ("tensorrt", "int8")), "tensorrt", "tensorrt",
           "TensorRT engines are built on the Jetson itself (engines are per GPU and version)"),
    Preset("android", (("tflite", "int8"), ("tflite", "fp32")), "litert", "tflite",
           "LiteRT with XNNPACK; PT2E int8 keeps MobileViT's attention in float"),
    Preset("ios", (("coreml", "fp16"),), "coreml", "coreml",
           "Core ML mlprogram fp16 runs on the Neural Engine; gated on a Mac"),
    Preset("x86-cpu", (("tflite", "fp32"), ("onnx", "fp32")), "litert", "x86",
           "LiteRT fp32 (XNNPACK) was the fastest end to end on x86 here, int8 included; "
           "ONNX fp32 for onnxruntime and OpenVINO"),
    Preset("intel", (("openvino", "int8"), ("openvino", "fp32")), "openvino", "x86",
           "OpenVINO with NNCF int8 on Intel CPUs, and its fp32 IR"),
)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ExportError(unknown_name("device", name, list(PRESETS))) from None
