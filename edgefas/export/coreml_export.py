"""Core ML mlprogram from the bundle's PyTorch classifier (coremltools, through torch.export).

The TorchScript path fails on timm's MobileViT (coremltools casts a shape expression with
``int()``); ``torch.export`` + ``run_decompositions({})`` converts it (toolchain notes).
Conversion works on Linux; prediction needs macOS, so the parity gate runs there only.
"""
from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch


def export_coreml(model: torch.nn.Module, dst: Path, precision: str, calib: np.ndarray) -> Path:
    """Convert ``model`` to ``dst`` (an ``.mlpackage`` folder) with fp16 or fp32 compute."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # coremltools warns that it was tested with older torch and scikit-learn versions, and
        # that its native runtime is missing off macOS; neither affects conversion.
        warnings.simplefilter("ignore")
        import coremltools as ct

        x = torch.from_numpy(np.ascontiguousarray(calib[:1], np.float32))
        program = torch.export.export(model.eval().cpu(), (x,)).run_decompositions({})
        compute = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
        ml = ct.convert(program, convert_to="mlprogram", compute_precision=compute,
                        minimum_deployment_target=ct.target.iOS17)
    shutil.rmtree(dst, ignore_errors=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ml.save(str(dst))
    return dst
