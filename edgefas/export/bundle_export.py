"""``edgefas export BUNDLE --target T --precision P``: add a gated export to a bundle.

The bundle is copied to ``out`` (or extended in place when ``out`` is the bundle), the
classifier is converted, the conversion is checked against the fp32 ONNX reference on real
labelled devel faces, and only a passing file is kept; its figures go into the manifest under
``parity``. A failing export leaves nothing behind and raises :class:`ExportError` with the
numbers by which it failed.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..bundle import MANIFEST, load_bundle, write_manifest
from ..data.face_cache import CropSet
from ..errors import BackendUnavailable, ExportError
from ..runtime.backends import load_model
from ..runtime.calibration import apply_platt, platt_logit
from ..runtime.preprocess import to_tensor
from .targets import get_target


@dataclass(frozen=True)
class GateReport:
    target: str
    precision: str
    n_faces: int
    bona_fide: int
    attack: int
    max_abs_diff_logit: float
    decisions_agree: float           # share of faces with the same decision as fp32
    apcer_fp32: float
    apcer: float
    bpcer_fp32: float
    bpcer: float
    passed: bool
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _logits(model, x: np.ndarray) -> np.ndarray:
    return np.concatenate([model.run(x[i:i + 64])[0].reshape(-1) for i in range(0, len(x), 64)])


def _rates(live: np.ndarray, is_attack: np.ndarray) -> tuple[float, float]:
    return float(live[is_attack].mean()), float((~live[~is_attack]).mean())


def export_bundle(bundle: str | Path, *, target: str, precision: str, out: str | Path,
                  devel: CropSet, calib_size: int = 300, gate_size: int = 2000) -> GateReport:
    """Export the bundle's classifier to ``target`` at ``precision`` into bundle ``out``.

    Args:
        devel: labelled aligned devel crops (never test): calibration draws ``calib_size`` of
            them for int8, the gate scores up to ``gate_size`` (both classes).
    """
    t0 = time.time()
    tgt = get_target(target)
    if precision not in tgt.precisions:
        raise ExportError(f"{target} supports {', '.join(tgt.precisions)}, not {precision}")
    if not tgt.available():
        raise BackendUnavailable(f"exporting to {target} needs {', '.join(tgt.needs)}: "
                                 f"pip install '{tgt.pip_extra}'")
    src = load_bundle(bundle)
    out = Path(out)
    if out.resolve() != src.path.resolve():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(src.path, out)
    devel = devel.subset(devel.ok)
    if len(devel) == 0:
        raise ExportError("no usable devel faces to calibrate and check the export on")
    rng = np.random.default_rng(0)
    gate_idx = np.sort(rng.choice(len(devel), min(gate_size, len(devel)), replace=False))
    calib_idx = np.sort(rng.choice(len(devel), min(calib_size, len(devel)), replace=False))
    x_gate = to_tensor(devel.crops[gate_idx], src.contract)
    x_calib = to_tensor(devel.crops[calib_idx], src.contract)
    is_attack = np.array([devel.samples[i].is_attack for i in gate_idx])

    path = tgt.convert(out / "classifier.onnx", out, precision, x_calib)
    produced = [path] + ([path.with_suffix(".bin")] if path.suffix == ".xml" else [])
    ref = _logits(load_model(out / "classifier.onnx", "onnxruntime"), x_gate)
    got = _logits(load_model(path, tgt.backend), x_gate)
    cal = src.calibration
    # Decisions on the calibrated score at the bundle threshold, as the Detector makes them.
    live_ref = apply_platt(ref, cal["a"], cal["b"]) >= src.threshold
    live_got = apply_platt(got, cal["a"], cal["b"]) >= src.threshold
    # The threshold is itself a devel score, so some faces sit exactly on it; within fp32
    # tolerance of the boundary a flip is numerical noise, not a changed decision.
    thr = min(max(src.threshold, 1e-12), 1 - 1e-12)
    thr_logit = platt_logit(thr, cal["a"], cal["b"])
    on_boundary = np.abs(ref - thr_logit) <= tgt.fp32_atol
    live_got = np.where(on_boundary, live_ref, live_got)
    ap0, bp0 = _rates(live_ref, is_attack)
    ap1, bp1 = _rates(live_got, is_attack)
    diff = float(np.abs(ref - got).max())
    if precision == "fp32":
        passed = diff <= tgt.fp32_atol
    else:
        passed = abs(ap1 - ap0) <= tgt.max_rate_shift and abs(bp1 - bp0) <= tgt.max_rate_shift
    report = GateReport(target, precision, len(gate_idx), int((~is_attack).sum()),
                        int(is_attack.sum()), diff, float((live_ref == live_got).mean()),
                        ap0, ap1, bp0, bp1, passed, round(time.time() - t0, 1))
    if not passed:
        for f in produced:
            f.unlink(missing_ok=True)
        raise ExportError(
            f"{target} {precision} failed its parity gate on {len(gate_idx)} devel faces: "
            f"max |diff| {diff:.2e}, APCER {100 * ap1:.2f}% vs {100 * ap0:.2f}%, BPCER "
            f"{100 * bp1:.2f}% vs {100 * bp0:.2f}% (allowed shift "
            f"{100 * tgt.max_rate_shift:.1f} pp); nothing was written")
    manifest = json.loads((out / MANIFEST).read_text())
    key = tgt.model_key(precision)
    manifest["models"]["classifier"][key] = path.relative_to(out).as_posix()
    manifest.setdefault("parity", {})[key] = report.to_dict()
    for k in ("files", "schema_version"):
        manifest.pop(k, None)
    write_manifest(out, manifest)
    return report
