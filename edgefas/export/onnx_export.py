"""Export a classifier to ONNX and prove it matches PyTorch before keeping the file.

Uses the legacy exporter at opset 17 (MobileViT exports cleanly there, with a dynamic batch
axis; the dynamo exporter targets opset 20 and needs one export per input size anyway).
The parity gate runs the exported graph with onnxruntime on real aligned faces and refuses
the file (raises :class:`ExportError`, deletes it) when the outputs differ by more than
:func:`fp32_parity` allows or any live/spoof decision flips at the threshold.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ExportError
from .parity import FP32_ATOL, FP32_MAX_FACTOR, decision_band, fp32_parity

OPSET = 17


@dataclass(frozen=True)
class ParityReport:
    """What the parity gate measured; written into the bundle manifest."""

    format: str
    precision: str
    n_inputs: int
    max_abs_diff: float
    atol: float
    decisions_flipped: int
    seconds: float
    q99_abs_diff: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def export_onnx(model: torch.nn.Module, inputs: np.ndarray, path: str | Path, *,
                decision_logit: float = 0.0, atol: float = FP32_ATOL) -> ParityReport:
    """Export ``model`` (N,3,S,S) -> (N,) to ``path`` and gate it on ``inputs``.

    Args:
        model: the torch classifier (eval mode is set here).
        inputs: preprocessed float32 inputs, ideally real aligned faces from a devel split.
        path: where the ``.onnx`` goes; nothing is left there when the gate fails.
        decision_logit: the logit at which live/spoof flips (the threshold mapped back
            through the calibration); flips are counted around it.
        atol: the absolute output difference at most 1 % of the outputs may exceed (none
            may exceed ``FP32_MAX_FACTOR`` times it; see :func:`fp32_parity`).

    Raises:
        ExportError: the export failed, or the exported model failed the parity gate.
    """
    import onnxruntime as ort

    path = Path(path)
    t0 = time.time()
    model = model.eval().cpu()
    x = torch.from_numpy(np.ascontiguousarray(inputs[:2], np.float32))
    tmp = path.with_suffix(".tmp.onnx")
    try:
        with warnings.catch_warnings():
            # The legacy exporter is chosen on purpose (see module doc); torch warns about it.
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["face"], output_names=["live_logit"],
                              dynamic_axes={"face": {0: "batch"}, "live_logit": {0: "batch"}})
    except Exception as exc:  # torch raises many types; report them as one
        tmp.unlink(missing_ok=True)
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    ref, got = [], []
    with torch.no_grad():
        for i in range(0, len(inputs), 64):
            xb = np.ascontiguousarray(inputs[i:i + 64], np.float32)
            ref.append(model(torch.from_numpy(xb)).numpy())
            got.append(sess.run(None, {"face": xb})[0])
    ref_a, got_a = np.concatenate(ref), np.concatenate(got)
    close, q99, diff = fp32_parity(ref_a, got_a, atol)
    # The devel threshold is itself a devel score, so some outputs sit exactly on it; a flip
    # within the fp32 noise band is numerical. Count flips only where PyTorch is clear of it.
    clear = np.abs(ref_a - decision_logit) > decision_band(atol)
    flips = int((((ref_a >= decision_logit) != (got_a >= decision_logit)) & clear).sum())
    report = ParityReport("onnx", "fp32", len(inputs), diff, atol, flips,
                          round(time.time() - t0, 2), q99)
    if not close or flips:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"ONNX parity gate failed on {len(inputs)} faces: |diff| 99th "
                          f"percentile {q99:.2e} (at most 1 % of faces may exceed {atol:.0e}), "
                          f"max {diff:.2e} (allowed {FP32_MAX_FACTOR * atol:.0e}), {flips} "
                          "decision(s) flipped; the file was not written")
    os.replace(tmp, path)
    return report
