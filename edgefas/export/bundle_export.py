"""``edgefas export BUNDLE --target T --precision P``: add a gated export to a bundle.

The bundle is copied to ``out`` (or extended in place when ``out`` is the bundle), the
classifier is converted, the conversion is checked against PyTorch (the bundle's safetensors;
for bundles without them, its fp32 ONNX graph) on real labelled devel faces, and only a
passing file is kept; its figures go into the manifest under ``parity``. A failing export
leaves nothing behind and raises :class:`ExportError` with the numbers by which it failed.
Formats that cannot predict on this OS (Core ML off macOS) are converted and written with
the gate recorded as not run, and why.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..bundle import MANIFEST, is_default_bundle, load_bundle, write_manifest
from ..data.face_cache import CropSet
from ..errors import ExportError
from ..runtime.backends import load_model
from ..runtime.calibration import apply_platt, platt_logit
from ..runtime.preprocess import to_tensor
from .source import ExportSource
from .targets import check_target, get_target


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
    passed: bool | None              # None: the gate could not run on this OS (see reason)
    seconds: float
    reference: str = "pytorch"       # what the export was compared with
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _logits(model, x: np.ndarray) -> np.ndarray:
    return np.concatenate([model.run(x[i:i + 64])[0].reshape(-1) for i in range(0, len(x), 64)])


def _reference_logits(source: ExportSource, x: np.ndarray) -> tuple[np.ndarray, str]:
    """PyTorch's logits when the bundle carries its weights and torch is here, else ONNX's."""
    import importlib.util

    if source.has_torch and importlib.util.find_spec("torch") is not None:
        import torch

        model = source.torch_model()
        with torch.no_grad():
            out = [model(torch.from_numpy(x[i:i + 64])).numpy() for i in range(0, len(x), 64)]
        return np.concatenate(out).reshape(-1), "pytorch"
    return _logits(load_model(source.onnx, "onnxruntime"), x), "onnx fp32"


def _rates(live: np.ndarray, is_attack: np.ndarray) -> tuple[float, float]:
    return float(live[is_attack].mean()), float((~live[~is_attack]).mean())


def export_bundle(bundle: str | Path, *, target: str, precision: str, out: str | Path,
                  devel: CropSet, calib_size: int = 300, gate_size: int = 2000) -> GateReport:
    """Export the bundle's classifier to ``target`` at ``precision`` into bundle ``out``.

    Args:
        devel: labelled aligned devel crops (never test): calibration draws ``calib_size`` of
            them for int8, the gate scores up to ``gate_size`` (both classes).
    """
    tgt = get_target(target)
    check_target(tgt, precision)
    src = load_bundle(bundle)
    out = Path(out)
    in_place = out.resolve() == src.path.resolve()
    if is_default_bundle(out):
        raise ExportError(f"{out} is the bundle shipped inside edgefas (its manifest is pinned): "
                          "export into a new folder")
    if not in_place and out.exists():
        # never delete what is there: it may be another bundle, or the source's parent folder
        raise ExportError(f"{out} exists: give a new folder for the exported bundle, or export "
                          f"from {out} itself to add to that bundle")
    devel = devel.subset(devel.ok)
    if len(devel) == 0:
        raise ExportError("no usable devel faces to calibrate and check the export on")
    if not in_place:
        shutil.copytree(src.path, out)
    try:
        return _export_into(src, out, tgt, target, precision, devel, calib_size, gate_size)
    except BaseException:
        if not in_place:   # the folder is this call's own: a failed export leaves nothing
            shutil.rmtree(out, ignore_errors=True)
        raise


def _export_into(src, out: Path, tgt, target: str, precision: str, devel: CropSet,
                 calib_size: int, gate_size: int) -> GateReport:
    t0 = time.time()
    rng = np.random.default_rng(0)
    gate_idx = np.sort(rng.choice(len(devel), min(gate_size, len(devel)), replace=False))
    calib_idx = np.sort(rng.choice(len(devel), min(calib_size, len(devel)), replace=False))
    x_gate = to_tensor(devel.crops[gate_idx], src.contract)
    x_calib = to_tensor(devel.crops[calib_idx], src.contract)
    is_attack = np.array([devel.samples[i].is_attack for i in gate_idx])

    source = ExportSource(load_bundle(out))
    before = {p for p in out.rglob("*")}
    path = tgt.convert(source, out, precision, x_calib)
    produced = sorted(p for p in out.rglob("*") if p not in before)
    ref, reference = _reference_logits(source, x_gate)
    key = tgt.model_key(precision)
    if not tgt.can_predict_here():
        host = {"Darwin": "macOS"}.get(tgt.predicts_on or "", tgt.predicts_on)
        reason = (f"{target} models predict only on {host}; converted here, gate not run: "
                  f"re-run this export on {host} to gate it")
        report = GateReport(target, precision, 0, 0, 0, float("nan"), float("nan"), float("nan"),
                            float("nan"), float("nan"), float("nan"), None,
                            round(time.time() - t0, 1), reference, reason)
        _record(out, key, path, report)
        return report
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
                        ap0, ap1, bp0, bp1, passed, round(time.time() - t0, 1), reference)
    if not passed:
        for f in sorted(produced, reverse=True):  # files before their folders
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
        raise ExportError(
            f"{target} {precision} failed its parity gate on {len(gate_idx)} devel faces: "
            f"max |diff| {diff:.2e} vs {reference} (fp32 allows {tgt.fp32_atol:.0e}), "
            f"APCER {100 * ap1:.2f}% vs {100 * ap0:.2f}%, BPCER "
            f"{100 * bp1:.2f}% vs {100 * bp0:.2f}% (allowed shift "
            f"{100 * tgt.max_rate_shift:.1f} pp for fp16/int8); nothing was written")
    _record(out, key, path, report)
    return report


def _record(out: Path, key: str, path: Path, report: GateReport) -> None:
    """The export's file and gate figures into the manifest (which re-hashes every file)."""
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["models"]["classifier"][key] = path.relative_to(out).as_posix()
    manifest.setdefault("parity", {})[key] = {
        k: (None if isinstance(v, float) and v != v else v)  # NaN is not JSON
        for k, v in report.to_dict().items()}
    for k in ("files", "schema_version"):
        manifest.pop(k, None)
    write_manifest(out, manifest)
