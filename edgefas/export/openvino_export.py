"""OpenVINO IR (fp32, fp16 weights) and int8 through NNCF post-training quantization."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def export_openvino(src: Path, dst: Path, precision: str, calib: np.ndarray) -> Path:
    """Convert the ONNX classifier ``src`` to IR at ``dst`` (``.xml`` + ``.bin``)."""
    import openvino as ov

    model = ov.convert_model(str(src))
    # IR keeps a dynamic batch from the ONNX graph; fix it to the calibration batch for NNCF.
    if precision == "int8":
        import nncf

        data = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))])
        # TRANSFORMER keeps MobileViT's attention blocks accurate (toolchain notes).
        model = nncf.quantize(model, data, subset_size=min(300, len(calib)),
                              model_type=nncf.ModelType.TRANSFORMER)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(dst), compress_to_fp16=(precision == "fp16"))
    return dst
