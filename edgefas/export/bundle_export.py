"""``edgefas export BUNDLE --target T --precision P``: add a gated export to a bundle.

The bundle is copied to a staging folder beside ``out``, the classifier is converted, the
conversion is checked against PyTorch (the bundle's safetensors; for bundles without them,
its fp32 ONNX graph) on real labelled devel faces, and only a passing file is kept; its
figures go into the manifest under ``parity``, and the staging folder becomes ``out`` (a new
folder, or the bundle itself when adding to it). A failing export leaves ``out`` as it was
and raises :class:`ExportError` with the numbers by which it failed. Formats that cannot
predict on this OS (Core ML off macOS) are converted and written with the gate recorded as
not run, and why.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..bundle import MANIFEST, check_bundle_files, is_default_bundle, load_bundle, write_manifest
from ..data.face_cache import CropSet
from ..errors import ExportError
from ..runtime.backends import load_model
from ..runtime.calibration import apply_platt, platt_logit
from ..runtime.preprocess import to_tensor
from .parity import FP32_MAX_FACTOR, decision_band, fp32_parity
from .source import ExportSource
from .targets import TORCH_MODULES, check_target, get_target


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
    reference: str = "pytorch"       # what the export was compared with ("none": not run)
    reason: str = ""
    # Bona fide faces from other cameras (LFW train identities), recorded beside the gate:
    # how many, the share of unchanged decisions and the BPCER before and after.
    other_faces: int = 0
    other_decisions_agree: float = float("nan")
    other_bpcer_fp32: float = float("nan")
    other_bpcer: float = float("nan")
    # the labelled faces the export was calibrated and gated on
    gate_data: str = ""
    q99_abs_diff_logit: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def _logits(model, x: np.ndarray) -> np.ndarray:
    return np.concatenate([model.run(x[i:i + 64])[0].reshape(-1) for i in range(0, len(x), 64)])


def _reference_logits(source: ExportSource, x: np.ndarray) -> tuple[np.ndarray, str]:
    """PyTorch's logits when the bundle carries its weights and torch is here, else ONNX's."""
    import importlib.util

    # the bundle's PyTorch model needs all three; the export extra alone may lack timm
    if source.has_torch and all(importlib.util.find_spec(m) is not None for m in TORCH_MODULES):
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
    """Export the bundle's classifier to ``target`` at ``precision`` into bundle ``out``
    (see :func:`export_bundle_many`, of which this is the one-export case)."""
    return export_bundle_many(bundle, [(target, precision)], out=out, devel=devel,
                              calib_size=calib_size, gate_size=gate_size)[0]


def export_bundle_many(bundle: str | Path, exports: list[tuple[str, str]], *, out: str | Path,
                       devel: CropSet, other_bona_fide: CropSet | None = None,
                       calib_size: int = 300, gate_size: int = 2000,
                       gate_data: str = "") -> list[GateReport]:
    """Make every ``(target, precision)`` export of ``exports`` into bundle ``out``, or none.

    The exports are made in a staging copy of the bundle beside ``out``, which takes the
    place of ``out`` only once all of them passed their gates: a failure (a gate, a converter,
    an interrupt) leaves ``out`` exactly as it was, including files a re-export would have
    replaced, and a new ``out`` is not created.

    Args:
        out: a new folder, or the bundle itself to add to it.
        devel: labelled aligned devel crops (never test): calibration draws ``calib_size`` of
            them for int8, the gate scores up to ``gate_size`` (both classes).
        other_bona_fide: optional bona fide crops from other cameras (not test data; the CLI
            passes LFW train identities): decision agreement and BPCER on up to 1,000 of them
            are recorded beside the gate.
        gate_data: what ``devel`` is (e.g. "Replay-Attack P1 devel", or the user's captures),
            recorded with each gate's figures in the manifest.
    """
    plan = [(get_target(t), t, p) for t, p in exports]
    for tgt, _, p in plan:
        check_target(tgt, p)
    src = load_bundle(bundle)
    out = Path(out)
    in_place = out.resolve() == src.path.resolve()
    if in_place:
        out = src.path.resolve()   # through a symlink, the folder itself is what is replaced
    if is_default_bundle(out):
        raise ExportError(f"{out} is the bundle shipped inside edgefas (its manifest is pinned): "
                          "export into a new folder")
    if not in_place and out.exists():
        # never delete what is there: it may be another bundle, or the source's parent folder
        raise ExportError(f"{out} exists: give a new folder for the exported bundle, or export "
                          f"from {out} itself to add to that bundle")
    # a file the manifest could not list would only be refused when it is written, after
    # minutes of conversion
    check_bundle_files(src.path)
    devel = devel.subset(devel.ok)
    if other_bona_fide is not None:
        other_bona_fide = other_bona_fide.subset(other_bona_fide.ok)
    if len(devel) == 0:
        raise ExportError("no usable devel faces to calibrate and check the export on")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".export", dir=out.parent))
    old = stage.with_name(stage.name + ".old")
    try:
        shutil.copytree(src.path, stage, dirs_exist_ok=True)
        reports = [_export_into(src, stage, tgt, t, p, devel, calib_size, gate_size,
                                other_bona_fide, gate_data=gate_data) for tgt, t, p in plan]
        os.chmod(stage, 0o755)   # mkdtemp's folder is owner-only; a bundle is meant to be shared
        if in_place:
            # two renames on one file system; should the second fail, the first is undone below
            os.replace(out, old)
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, out)
    except BaseException:
        if in_place and old.is_dir() and not out.exists():
            os.replace(old, out)   # the bundle as it was, not a hidden *.old beside nothing
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return reports


def _draw(rng: np.random.Generator, n: int, k: int, avoid: np.ndarray | None = None) -> np.ndarray:
    """``k`` sorted indices of ``range(n)`` without replacement, outside ``avoid`` while
    enough remain (calibration faces are not gate faces when devel is large enough)."""
    pool = np.arange(n) if avoid is None else np.setdiff1d(np.arange(n), avoid)
    if len(pool) < min(k, n):
        pool = np.arange(n)
    return np.sort(rng.choice(pool, min(k, len(pool)), replace=False))


class _Decide:
    """Decisions on the calibrated score at the bundle threshold, as the Detector makes them."""

    def __init__(self, src, atol: float) -> None:
        cal = src.calibration
        self.a, self.b, self.threshold, self.atol = cal["a"], cal["b"], src.threshold, atol
        thr = min(max(src.threshold, 1e-12), 1 - 1e-12)
        self.thr_logit = platt_logit(thr, cal["a"], cal["b"])

    def __call__(self, ref: np.ndarray, got: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        live_ref = apply_platt(ref, self.a, self.b) >= self.threshold
        live_got = apply_platt(got, self.a, self.b) >= self.threshold
        # The threshold is itself a devel score, so some faces sit exactly on it; within the
        # fp32 noise band of the boundary (edgefas.export.parity) a flip is not a changed decision.
        on_boundary = np.abs(ref - self.thr_logit) <= self.atol
        return live_ref, np.where(on_boundary, live_ref, live_got)


def _export_into(src, out: Path, tgt, target: str, precision: str, devel: CropSet,
                 calib_size: int, gate_size: int, other: CropSet | None = None,
                 other_size: int = 1000, gate_data: str = "") -> GateReport:
    t0 = time.time()
    rng = np.random.default_rng(0)
    gate_idx = _draw(rng, len(devel), gate_size)
    calib_idx = _draw(rng, len(devel), calib_size, avoid=gate_idx)
    x_gate = to_tensor(devel.crops[gate_idx], src.contract)
    x_calib = to_tensor(devel.crops[calib_idx], src.contract)
    is_attack = np.array([devel.samples[i].is_attack for i in gate_idx])

    source = ExportSource(load_bundle(out))
    path = tgt.convert(source, out, precision, x_calib)
    key = tgt.model_key(precision)
    if not tgt.can_predict_here():
        host = {"Darwin": "macOS"}.get(tgt.predicts_on or "", tgt.predicts_on)
        reason = (f"{target} models predict only on {host}; converted here, gate not run: "
                  f"re-run this export on {host} to gate it")
        report = GateReport(target, precision, 0, 0, 0, float("nan"), float("nan"), float("nan"),
                            float("nan"), float("nan"), float("nan"), None,
                            round(time.time() - t0, 1), "none", reason, gate_data=gate_data)
        _record(out, key, path, report)
        return report
    model = load_model(path, tgt.backend)
    ref, reference = _reference_logits(source, x_gate)
    got = _logits(model, x_gate)
    decide = _Decide(src, decision_band(tgt.fp32_atol))
    live_ref, live_got = decide(ref, got)
    ap0, bp0 = _rates(live_ref, is_attack)
    ap1, bp1 = _rates(live_got, is_attack)
    close, q99, diff = fp32_parity(ref, got, tgt.fp32_atol)
    if precision == "fp32":   # a decision can only flip outside the noise band if this fails
        passed = close
    else:
        passed = abs(ap1 - ap0) <= tgt.max_rate_shift and abs(bp1 - bp0) <= tgt.max_rate_shift
    report = GateReport(target, precision, len(gate_idx), int((~is_attack).sum()),
                        int(is_attack.sum()), diff, float((live_ref == live_got).mean()),
                        ap0, ap1, bp0, bp1, passed, round(time.time() - t0, 1), reference,
                        gate_data=gate_data, q99_abs_diff_logit=q99)
    if not passed:   # raised into export_bundle_many, which discards the staging copy
        raise ExportError(
            f"{target} {precision} failed its parity gate on {len(gate_idx)} devel faces: "
            f"|diff| vs {reference} 99th percentile {q99:.2e}, max {diff:.2e} (fp32 allows "
            f"{tgt.fp32_atol:.0e} and {FP32_MAX_FACTOR * tgt.fp32_atol:.0e}), "
            f"APCER {100 * ap1:.2f}% vs {100 * ap0:.2f}%, BPCER "
            f"{100 * bp1:.2f}% vs {100 * bp0:.2f}% (allowed shift "
            f"{100 * tgt.max_rate_shift:.1f} pp for fp16/int8), decisions agree "
            f"{100 * float((live_ref == live_got).mean()):.2f}%; nothing was written")
    if other is not None and len(other):
        # Devel scores are nearly saturated, so almost no devel face sits near the threshold
        # and the gate above cannot see how often a reduced precision flips a decision there:
        # bona fide faces from other cameras, whose scores spread across the threshold, show it
        # (recorded beside the gate, not gated: the gate is the devel one).
        idx = _draw(np.random.default_rng(1), len(other), other_size)
        x = to_tensor(other.crops[idx], src.contract)
        o_ref, o_got = decide(_reference_logits(source, x)[0], _logits(model, x))
        report = replace(report, other_faces=len(idx), other_decisions_agree=float(
            (o_ref == o_got).mean()), other_bpcer_fp32=float((~o_ref).mean()),
            other_bpcer=float((~o_got).mean()), seconds=round(time.time() - t0, 1))
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
