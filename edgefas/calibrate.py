"""Per-camera calibration: fit a bundle's threshold (and score calibration) to one camera.

A threshold chosen on Replay-Attack devel is tuned to that data set's webcam; a kiosk's own
camera shifts the live scores (other sensor, light, compression). A few hundred live captures
from the target camera fix the bona fide side: the threshold becomes the highest one whose
BPCER on those captures stays within the target. Attack captures, when given, refit the Platt
calibration (so ``live_score`` stays a probability on this camera) and give APCER.

With attack captures, ``target_apcer`` sets the security level instead: the threshold becomes
the lowest one at which every attack species lets through at most the target (the fixed-APCER
operating point of ISO/IEC 30107-3's "BPCER at APCER = x"), so live users are rejected as
little as that security level allows.

The expected rates come from an out-of-bag bootstrap of the whole procedure: choose the
threshold on a resample of the captures, measure on the captures left out of it. That is the
error to expect on *new* captures; the in-sample rate at the chosen threshold is optimistic
by construction (it is what the threshold was chosen for).
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .bundle import load_bundle, write_manifest
from .data.image_files import find_images, suffix_list
from .detector import Detector
from .errors import EdgefasError
from .metrics.bootstrap import wilson_ci
from .runtime.calibration import apply_platt, fit_platt


@dataclass
class Captures:
    """Raw live logits of the usable captures of a folder; the others are failures to acquire."""

    logits: np.ndarray
    species: list[str]          # sub-folder name per usable capture ("" at the top level)
    failed: dict[str, int]      # decision -> count of captures without a scored face

    @property
    def fta(self) -> int:
        return sum(self.failed.values())


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise EdgefasError(f"{root} is not a folder of captures")
    files = find_images(root)
    if not files:
        raise EdgefasError(f"{root} holds no images ({suffix_list()})")
    return files


def collect(det: Detector, folder: str | os.PathLike[str], *, progress: bool = True,
            desc: str = "captures") -> Captures:
    """Run the face stage on every image under ``folder`` and the classifier on the faces."""
    root = Path(folder)
    files = list_images(root)
    # lower case, as edgefas.data.folder: "Print/" and "print/" are one species
    species = [rel[0].lower() if len(rel := f.relative_to(root).parts) > 1 else "" for f in files]
    return collect_files(det, files, species, progress=progress, desc=desc)


def collect_files(det: Detector, files: list[Path], species: list[str], *, progress: bool = True,
                  desc: str = "captures") -> Captures:
    """:func:`collect` over listed images, each with its species ("" for live captures)."""
    crops, kept, failed = [], [], {}
    for f, sp in tqdm(list(zip(files, species)), desc=f"scoring {desc}", unit="img",
                      disable=not progress):
        crop, res = det.face_crop(f)
        if crop is None:
            failed[res.decision.value] = failed.get(res.decision.value, 0) + 1
            continue
        crops.append(crop)
        kept.append(sp)
    logits = np.concatenate([det.live_logits(np.stack(crops[i:i + 64]))
                             for i in range(0, len(crops), 64)]) if crops else np.zeros(0)
    return Captures(logits, kept, failed)


def threshold_for_bpcer(live_scores: np.ndarray, target: float) -> float:
    """Highest threshold (one of the scores) that rejects at most ``target`` of them.

    With n scores, at most floor(target * n) may fall below it: the sorted score at that rank.
    """
    s = np.sort(np.asarray(live_scores, float))
    k = int(np.floor(target * len(s) + 1e-9))
    return float(s[min(k, len(s) - 1)])


def threshold_for_apcer(attack_scores: np.ndarray, species: list[str] | np.ndarray,
                        target: float) -> float:
    """Lowest threshold at which each species lets through at most ``target`` of its attacks.

    Accepted means ``score >= threshold``; with n captures of a species, at most
    floor(target * n) of them may be accepted, so the threshold sits just above the score
    ranked floor(target * n) + 1 from the top. The worst species decides (APCER_max).
    """
    s = np.asarray(attack_scores, float)
    sp = np.asarray(species)
    thr = 0.0
    for name in np.unique(sp):
        d = np.sort(s[sp == name])[::-1]
        k = int(np.floor(target * len(d) + 1e-9))
        if k < len(d):
            thr = max(thr, float(np.nextafter(d[k], np.inf)))
    return thr


def _rate(errors: int, count: int) -> dict[str, Any]:
    return {"value": errors / count if count else None, "errors": errors, "count": count,
            "ci95_wilson": list(wilson_ci(errors, count)) if count else None}


def oob_bootstrap(live: np.ndarray, attack: np.ndarray, target: float, *, n: int = 1000,
                  seed: int = 0, criterion: str = "bpcer",
                  species: list[str] | np.ndarray | None = None) -> dict[str, Any]:
    """Expected BPCER/APCER on new captures: threshold chosen on each resample, measured on the
    captures the resample left out (mean and 95% percentile interval).

    ``criterion`` "bpcer" chooses with :func:`threshold_for_bpcer` on resampled live captures;
    "apcer" with :func:`threshold_for_apcer` on resampled attacks (``species`` per attack),
    and then every live capture is out of the choice, so BPCER is measured on all of them.
    """
    rng = np.random.default_rng(seed)
    bp, ap, ap_max = [], [], []
    sp = np.asarray(species if species is not None else [""] * len(attack))

    def attack_rates(aout: np.ndarray, thr: float) -> None:
        accepted = attack[aout] >= thr
        ap.append(float(accepted.mean()))   # pooled over every left-out attack
        ap_max.append(max(float(accepted[sp[aout] == name].mean())   # the worst species
                          for name in np.unique(sp[aout])))

    for _ in range(n):
        if criterion == "apcer":
            ai = rng.integers(0, len(attack), len(attack))
            aout = np.setdiff1d(np.arange(len(attack)), ai)
            if not len(aout):
                continue
            thr = min(threshold_for_apcer(attack[ai], sp[ai], target), 1.0)
            attack_rates(aout, thr)
            bp.append(float((live < thr).mean()))
            continue
        li = rng.integers(0, len(live), len(live))
        out = np.setdiff1d(np.arange(len(live)), li)
        if not len(out):
            continue
        thr = threshold_for_bpcer(live[li], target)
        bp.append(float((live[out] < thr).mean()))
        if len(attack):
            ai = rng.integers(0, len(attack), len(attack))
            aout = np.setdiff1d(np.arange(len(attack)), ai)
            if len(aout):
                attack_rates(aout, thr)

    def summary(v: list[float]) -> dict[str, Any] | None:
        if not v:
            return None
        lo, hi = np.percentile(v, [2.5, 97.5])
        return {"mean": float(np.mean(v)), "ci95": [float(lo), float(hi)], "resamples": len(v)}

    # "apcer" pools every attack; "apcer_max" is the worst species of each resample, the
    # figure --target-apcer bounds (a large easy species hides a small hard one in the pool)
    return {"bpcer": summary(bp), "apcer": summary(ap),
            "apcer_max": summary(ap_max) if len(np.unique(sp)) > 1 else None}


def calibrate(bundle: str | os.PathLike[str] | None, live_dir: str | os.PathLike[str] | None,
              out_dir: str | os.PathLike[str], *, attack_dir: str | os.PathLike[str] | None = None,
              data: str | os.PathLike[str] | None = None,
              target_bpcer: float = 0.01, target_apcer: float | None = None,
              refit: bool = True, bootstrap: int = 1000, min_live: int = 50,
              progress: bool = True, command: str = "") -> dict[str, Any]:
    """Write a calibrated copy of ``bundle`` to ``out_dir``; return the report.

    The threshold is the highest with BPCER <= ``target_bpcer`` on the live captures or, when
    ``target_apcer`` is given (attack captures needed), the lowest with APCER <= it for every
    attack species. The captures are ``live_dir`` (and ``attack_dir``, sub-folders naming the
    species), or ``data``: a ``live/`` + ``attack/<species>/`` folder or a CSV, whose ``devel``
    rows are read when its split column is filled (:func:`edgefas.data.folder.load_labelled`).

    Raises:
        EdgefasError: too few usable live captures, no attack captures for ``target_apcer``,
            a bad target, or ``out_dir`` exists.
    """
    if not 0.0 <= target_bpcer < 1.0:
        raise EdgefasError(f"--target-bpcer must be in [0, 1), got {target_bpcer}")
    if (data is None) == (live_dir is None) or (data is not None and attack_dir is not None):
        raise EdgefasError("give --live DIR (and --attack DIR), or --data DATA")
    if target_apcer is not None:
        if not 0.0 <= target_apcer < 1.0:
            raise EdgefasError(f"--target-apcer must be in [0, 1), got {target_apcer}")
        if not attack_dir and data is None:
            raise EdgefasError("--target-apcer needs attack captures (--attack DIR)")
    out = Path(out_dir)
    if out.exists():
        raise EdgefasError(f"{out} exists: choose a new folder for the calibrated bundle")
    if attack_dir:
        if not Path(attack_dir).is_dir():
            raise EdgefasError(f"--attack {attack_dir} is not a folder")
        lr, ar = Path(live_dir).resolve(), Path(attack_dir).resolve()
        if lr == ar or lr in ar.parents or ar in lr.parents:
            # images of one would be scored as both live and attack
            raise EdgefasError(f"--live {live_dir} and --attack {attack_dir} overlap: give two "
                               "separate folders")
    det = Detector(bundle)
    if data is not None:
        from .data.folder import load_labelled

        samples = load_labelled(data, "devel")
        lv = [Path(s.path) for s in samples if not s.is_attack]
        at = [s for s in samples if s.is_attack]
        live = collect_files(det, lv, [""] * len(lv), progress=progress, desc="live captures")
        attack = collect_files(det, [Path(s.path) for s in at], [s.species for s in at],
                               progress=progress, desc="attack captures")
    else:
        live = collect(det, live_dir, progress=progress, desc="live captures")
        attack = collect(det, attack_dir, progress=progress, desc="attack captures") \
            if attack_dir else Captures(np.zeros(0), [], {})
    where = live_dir if data is None else data
    if len(live.logits) < max(min_live, 1):
        raise EdgefasError(f"only {len(live.logits)} live captures with a usable face under "
                           f"{where} (need >= {max(min_live, 1)}; failures: {live.failed})")
    a, b = det._cal_a, det._cal_b
    refitted = bool(refit and len(attack.logits))
    if refitted:
        # Platt needs both classes; with live captures only the old mapping is kept.
        x = np.concatenate([live.logits, attack.logits])
        y = np.r_[np.ones(len(live.logits)), np.zeros(len(attack.logits))]
        a, b = fit_platt(x, y)
    ls, as_ = apply_platt(live.logits, a, b), apply_platt(attack.logits, a, b)
    if target_apcer is not None:
        if not len(as_):
            raise EdgefasError(f"no attack capture with a usable face under {attack_dir or data} "
                               f"(failures: {attack.failed}); --target-apcer needs some")
        thr = threshold_for_apcer(as_, attack.species, target_apcer)
        if thr > 1.0:
            # attacks scored exactly 1.0 (the calibration saturates): no live score can be
            # required above them, so the target cannot be met by a threshold
            raise EdgefasError(f"some attack captures score 1.0, so no threshold keeps APCER <= "
                               f"{target_apcer} for every species; let the calibration be refit "
                               "on these captures (drop --no-refit) or raise the target")
        criterion = (f"lowest threshold with APCER <= {target_apcer} for every attack species "
                     "of the attack captures (edgefas calibrate --target-apcer)")
        boot = oob_bootstrap(ls, as_, target_apcer, n=bootstrap, criterion="apcer",
                             species=attack.species)
    else:
        thr = threshold_for_bpcer(ls, target_bpcer)
        criterion = (f"highest threshold with BPCER <= {target_bpcer} on the live captures "
                     "(edgefas calibrate)")
        boot = oob_bootstrap(ls, as_, target_bpcer, n=bootstrap, species=attack.species)
    bp_err = int((ls < thr).sum())
    report: dict[str, Any] = {
        "bundle": det.bundle.name, "target_bpcer": None if target_apcer is not None else target_bpcer,
        "target_apcer": target_apcer, "criterion": criterion, "threshold": thr,
        "previous_threshold": det.threshold, "calibration_refit": refitted,
        "calibration": {"a": a, "b": b}, "previous_calibration": {"a": det._cal_a,
                                                                    "b": det._cal_b},
        "live": {"dir": str(live_dir) if live_dir else None, "usable": int(len(ls)),
                 "failed": live.failed},
        "attack": {"dir": str(attack_dir) if attack_dir else None, "usable": int(len(as_)),
                   "failed": attack.failed},
        **({"data": _data_name(data)} if data is not None else {}),
        "in_sample": {"bpcer": _rate(bp_err, len(ls))},
        "expected_on_new_captures": boot,
        "bpcer_at_previous_threshold": _rate(int((apply_platt(live.logits, det._cal_a,
                                                              det._cal_b) < det.threshold).sum()),
                                             len(ls)),
        "command": command, "date": _dt.date.today().isoformat(),
    }
    if len(as_):
        report["in_sample"]["apcer"] = _rate(int((as_ >= thr).sum()), len(as_))
        sp = np.array(attack.species)
        if len(set(sp)) > 1:
            report["in_sample"]["apcer_per_species"] = {
                str(s or "(top level)"): _rate(int((as_[sp == s] >= thr).sum()), int((sp == s).sum()))
                for s in sorted(set(sp))}
    _write_bundle(det, out, report)
    return report


def _data_name(data: str | os.PathLike[str]) -> str:
    path = Path(data)
    return f"{path} (its devel rows, or all rows without a split column)" \
        if path.suffix.lower() == ".csv" else str(path)


def _write_bundle(det: Detector, out: Path, report: dict[str, Any]) -> None:
    shutil.copytree(det.bundle.path, out)
    m = dict(det.bundle.manifest)
    if report.get("data"):
        src = (f"camera captures: {report['live']['usable']} bona fide and "
               f"{report['attack']['usable']} attacks from {report['data']}")
    else:
        src = (f"camera captures: {report['live']['usable']} bona fide from {report['live']['dir']}"
               + (f", {report['attack']['usable']} attacks from {report['attack']['dir']}"
                  if report["attack"]["usable"] else ""))
    m["threshold"] = {"value": report["threshold"], "on": "live_score (live when >=)",
                      "split": src,
                      "criterion": report["criterion"],
                      "bona_fide": report["live"]["usable"], "attack": report["attack"]["usable"],
                      "previous": det.bundle.manifest["threshold"]}
    if report["calibration_refit"]:
        m["calibration"] = {**det.bundle.manifest["calibration"], **report["calibration"],
                            "fit_on": src + ", classes weighted equally",
                            "bona_fide": report["live"]["usable"],
                            "attack": report["attack"]["usable"],
                            "previous": det.bundle.manifest["calibration"]}
    m["camera_calibration"] = {k: v for k, v in report.items() if k not in ("calibration",)}
    m["calibrated_from"] = det.bundle.name
    m.pop("files", None)
    write_manifest(out, m)
    load_bundle(out)  # the copy must verify before anyone relies on it
