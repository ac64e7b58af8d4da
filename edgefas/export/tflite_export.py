"""LiteRT (.tflite) from the bundle's PyTorch classifier through litert-torch.

fp32 is a direct ``litert_torch.convert``. int8 is PT2E post-training quantization (torchao's
``prepare_pt2e``/``convert_pt2e`` with litert-torch's symmetric per-channel quantizer),
calibrated on real devel faces. The PT2E graph keeps LayerNorm/Softmax/BatchMatMul in float,
which is what keeps MobileViT fast under XNNPACK; ai-edge-quantizer's full-int8 recipe splits
the graph into ~90 delegate partitions and runs 2-5x slower (toolchain notes).
The signature stays NCHW like the PyTorch model; LiteRT's int8 models take int8 input, which
the runtime backend quantizes with the scale and zero point stored in the file.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch


def export_tflite(model: torch.nn.Module, dst: Path, precision: str, calib: np.ndarray) -> Path:
    """Convert ``model`` (N,3,S,S) -> (N,) to ``dst`` at batch 1; ``calib`` drives int8."""
    import litert_torch

    # litert-torch and jax log conversion chatter at WARNING through absl/logging.
    logging.getLogger("absl").setLevel(logging.ERROR)
    model = model.eval().cpu()
    x = torch.from_numpy(np.ascontiguousarray(calib[:1], np.float32))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # torch.export and torchao warn about deprecations inside their own code.
        warnings.simplefilter("ignore")
        if precision == "fp32":
            edge = litert_torch.convert(model, (x,))
        elif precision == "int8":
            edge = _convert_int8(litert_torch, model, x, calib)
        else:
            raise ValueError(f"tflite precision {precision!r}")
        edge.export(str(dst))
    return dst


def _convert_int8(litert_torch, model: torch.nn.Module, x: torch.Tensor, calib: np.ndarray):
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    with torch.no_grad():
        for i in range(len(calib)):  # observers see every calibration face, one at a time
            prepared(torch.from_numpy(np.ascontiguousarray(calib[i:i + 1], np.float32)))
    converted = convert_pt2e(prepared, fold_quantize=False)
    return litert_torch.convert(converted, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
