"""The fp32 parity rule every export gate applies (numpy only: no torch needed to read it)."""
from __future__ import annotations

import numpy as np

#: fp32 against fp32 (ONNX, OpenVINO, LiteRT vs PyTorch): differences come only from kernel
#: order. Measured on 1,500 Replay-Attack devel faces, logits of magnitude ~7: the 99th
#: percentile of |diff| was 6e-6 to 1.1e-5 for v0.3 and two CFD runs, the largest 1.3e-5 to
#: 4.8e-5, except one face of CFD run C1 at 2.9e-4. On the 256 faces of its packaging gate that
#: face was 2.26e-4 and failed the earlier max-only 1e-4 gate, as the no-LFW ablation had at
#: 2.7e-4. A conversion error (a wrong op, layout or constant) moves most faces, so the gate
#: lets at most 1 % of the faces (rounded down: none of fewer than 100) exceed ``atol``, and
#: none exceed ``FP32_MAX_FACTOR * atol``.
FP32_ATOL = 1e-4
FP32_MAX_FACTOR = 10


def fp32_parity(ref: np.ndarray, got: np.ndarray, atol: float = FP32_ATOL) -> tuple[bool, float, float]:
    """Whether fp32 outputs ``got`` match ``ref``: (passed, 99th percentile |diff|, max |diff|)."""
    d = np.abs(np.asarray(ref, np.float64) - np.asarray(got, np.float64)).reshape(-1)
    if not len(d) or not np.isfinite(d).all():
        return False, float("nan"), float("nan")
    q99, top = float(np.quantile(d, 0.99)), float(d.max())
    strays = int((d > atol).sum())
    return strays <= len(d) // 100 and top <= FP32_MAX_FACTOR * atol, q99, top


def decision_band(atol: float = FP32_ATOL) -> float:
    """How near the threshold (in logit) a flipped decision is numerical noise: the largest
    difference :func:`fp32_parity` allows, so any fp32 export that passes it changes no decision
    of a face further from the threshold than that."""
    return FP32_MAX_FACTOR * atol
