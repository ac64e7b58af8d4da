"""``edgefas bench``: every backend/precision a bundle holds, side by side, in one run.

For each variant (a backend that is installed here and a classifier file the bundle has) it
measures: size of the files it loads, APCER max / BPCER at the bundle threshold on labelled
devel crops (optional: needs the crop cache), and per-stage latency on 640x480 frames (or ``frame_size``) at
batch 1. Timing is interleaved: every round times each variant on every frame in turn, so
background load (a shared 2-core machine) falls on all of them alike instead of on whichever
ran last. Several bundles (a fusion model and the RGB baseline, say) are timed in the same
rounds too: on a machine whose speed drifts between runs, only same-round timings compare.
Variants that cannot run here are listed with the reason. ``compare`` times another shell
command in the same rounds.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bench import DEFAULT_FRAME, STAGES, frame_label, load_frames
from .bundle import Bundle, load_bundle
from .detector import Detector
from .errors import BackendUnavailable, BundleError, EdgefasError
from .runtime.backends import BACKENDS, PRECISIONS, why_unavailable


@dataclass
class Variant:
    backend: str
    precision: str
    status: str = "ok"
    size_mb: float | None = None
    detector: Detector | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    devel: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    bundle: str = ""                       # the bundle's name; set when several are timed

    @property
    def label(self) -> str:
        return f"{self.bundle} {self.backend} {self.precision}".strip()


def _files_mb(bundle: Bundle, keys: Sequence[tuple[str, str]]) -> float:
    total = 0
    for role, key in keys:
        p = bundle.model_file(role, key)
        files = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p]
        if p.suffix == ".xml":
            files.append(p.with_suffix(".bin"))
        total += sum(f.stat().st_size for f in files)
    return round(total / 1e6, 3)


def plan_variants(bundle: Bundle, backends: Sequence[str] | None = None,
                  precisions: Sequence[str] = PRECISIONS, threads: int = 2) -> list[Variant]:
    """One Variant per (backend, precision) whose classifier file the bundle holds."""
    have = bundle.manifest["models"]["classifier"]
    out = []
    for name in backends or list(BACKENDS):
        spec = BACKENDS[name]
        for prec in precisions:
            key = spec.model_key(prec, have)
            if key not in have:
                continue
            v = Variant(name, prec, parity=bundle.manifest.get("parity", {}).get(key))
            face_key, _ = spec.face
            v.size_mb = _files_mb(bundle, [("classifier", key), ("face_detector", face_key)])
            if not spec.installed():
                v.status = f"skipped: {why_unavailable(name)}"
            else:
                try:
                    v.detector = Detector(bundle, backend=name, precision=prec, threads=threads)
                except (BackendUnavailable, BundleError) as exc:
                    v.status = f"skipped: {exc}"
            out.append(v)
    return out


def _time_compare(cmd: str) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise EdgefasError(f"--compare command failed ({res.returncode}): "
                           f"{res.stderr.decode(errors='replace')[-300:]}")
    return (time.perf_counter() - t) * 1000.0


def devel_rates(det: Detector, crops: np.ndarray, is_attack: np.ndarray,
                species: np.ndarray) -> dict[str, Any]:
    """APCER max (worst attack species) and BPCER at the bundle threshold."""
    from .metrics import evaluate

    scores = np.concatenate([det.live_scores(crops[i:i + 64]) for i in range(0, len(crops), 64)])
    rep = evaluate(scores, is_attack, det.threshold, species=species, bootstrap=0)
    return {"apcer_max": rep.apcer_max.value, "apcer_max_species": rep.apcer_max_species,
            "bpcer": rep.bpcer.value, "n_bona_fide": rep.n_bona_fide, "n_attack": rep.n_attack}


Devel = tuple[np.ndarray, np.ndarray, np.ndarray, str]


def run_bench(images: Sequence[str | Path], *,
              bundle: str | Path | Sequence[str | Path | None] | None = None,
              backends: Sequence[str] | None = None, precisions: Sequence[str] = PRECISIONS,
              threads: int = 2, runs: int = 20, warmup: int = 3,
              devel: Devel | Sequence[Devel | None] | None = None,
              compare: str | None = None, compare_faces: int = 1,
              frame_size: tuple[int, int] = DEFAULT_FRAME) -> dict[str, Any]:
    """Benchmark every variant of ``bundle`` (one folder, or a list timed in the same rounds);
    see the module doc.

    Args:
        devel: (uint8 BGR crops, is_attack, species, split name) for APCER/BPCER, or None; with
            several bundles, one such tuple (or None) per bundle, in their order.
        compare: a shell command timed once per round, between the variants.
        compare_faces: faces that command scores per invocation (for its ms/face).
        frame_size: (width, height) of the frames the images are letterboxed into.
    """
    several = isinstance(bundle, (list, tuple))
    bundles = [load_bundle(x) for x in (bundle if several else [bundle])]
    develset = list(devel) if several and devel is not None else [devel] * len(bundles)
    if len(develset) != len(bundles):
        raise EdgefasError(f"{len(develset)} devel sets for {len(bundles)} bundles")
    if several and len({x.name for x in bundles}) < len(bundles):
        # Manifests may share a name (runs packaged from the same protocol): use the folders.
        names = [x.path.name if x.path.name not in ("bundle", "default") else
                 f"{x.path.parent.name}/{x.path.name}" for x in bundles]
    else:
        names = [x.name for x in bundles]
    variants, devel_of = [], {}
    for b, name, d in zip(bundles, names, develset):
        for v in plan_variants(b, backends, precisions, threads):
            v.bundle = name if several else ""
            variants.append(v)
            devel_of[id(v)] = d
    running = [v for v in variants if v.detector is not None]
    try:
        frames = load_frames(images, frame_size)
    except ValueError as exc:
        raise EdgefasError(str(exc)) from exc
    for v in running:
        v.samples = {s: [] for s in STAGES}
        for _ in range(warmup):
            for f in frames:
                v.detector(f)
    compare_ms: list[float] = []
    wall = {v.label: 0.0 for v in running}
    for _ in range(runs):
        for v in running:
            t0 = time.perf_counter()
            for f in frames:
                r = v.detector(f)
                for s in STAGES:
                    if s in r.timings_ms:
                        v.samples[s].append(r.timings_ms[s])
            wall[v.label] += time.perf_counter() - t0
        if compare:
            compare_ms.append(_time_compare(compare))
    for v in running:
        if devel_of[id(v)] is not None:
            crops, is_attack, species, _ = devel_of[id(v)]
            v.devel = devel_rates(v.detector, crops, is_attack, species)
    rows = []
    for v in variants:
        row: dict[str, Any] = {"bundle": v.bundle or names[0], "backend": v.backend,
                               "precision": v.precision, "status": v.status, "size_mb": v.size_mb,
                               "devel": v.devel, "parity": v.parity}
        if v.detector is not None:
            row["stages"] = {s: {"p50_ms": float(np.percentile(x, 50)),
                                 "p90_ms": float(np.percentile(x, 90)), "n": len(x)}
                             for s, x in v.samples.items() if x}
            row["fps"] = len(frames) * runs / wall[v.label]
        rows.append(row)
    out: dict[str, Any] = {
        "bundle": ", ".join(names), "bundles": names if several else None, "threads": threads,
        "batch": 1, "frames": len(frames), "runs": runs,
        "warmup_passes": warmup, "frame": frame_label(frame_size), "rows": rows,
        "devel_split": next((d[3] for d in develset if d is not None), None),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "system": platform.system(), "python": platform.python_version(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
                    "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }
    if compare:
        out["compare"] = {"command": compare, "faces_per_invocation": compare_faces,
                          "p50_ms": float(np.percentile(compare_ms, 50)),
                          "p90_ms": float(np.percentile(compare_ms, 90)), "n": len(compare_ms),
                          "argv": shlex.split(compare)}
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _mb(size: float | None) -> str:
    return "-" if size is None else f"{size:.2f}"


def table_markdown(res: dict[str, Any]) -> str:
    """``Format | Status | Size MB | APCER max | BPCER | ms/face p50/p90 ... | FPS``."""
    stages = [s for s in STAGES if s != "decode"]
    head = ("| Format | Status | Size MB | APCER max | BPCER | "
            + " | ".join(f"{s} p50/p90 ms" for s in stages) + " | FPS |")
    what = "Bundles" if res.get("bundles") else "Bundle"
    lines = [f"{what} `{res['bundle']}`, batch 1, {res['threads']} threads, {res['frames']} "
             f"frames ({res['frame']}) x {res['runs']} interleaved runs after "
             f"{res['warmup_passes']} warm-up passes; OMP_WAIT_POLICY="
             f"{res['machine']['omp_wait_policy']}; 1-min load average at the end "
             f"{res['machine']['load_avg_1min']:.2f} on {res['machine']['cores']} cores. "
             f"APCER max / BPCER at the bundle threshold on "
             f"{res['devel_split'] or 'no devel set (not measured)'}. "
             "score = the de-spoof network plus calibration.", "", head,
             "|" + "---|" * (6 + len(stages))]
    for r in res["rows"]:
        d = r.get("devel") or {}
        st = r.get("stages", {})
        cells = [f"{st[s]['p50_ms']:.2f} / {st[s]['p90_ms']:.2f}" if s in st else "-"
                 for s in stages]
        fps = f"{r['fps']:.1f}" if "fps" in r else "-"
        fmt = f"{r['bundle']} {r['backend']}" if res.get("bundles") else r["backend"]
        lines.append(f"| {fmt} {r['precision']} | {r['status']} | {_mb(r['size_mb'])} | "
                     f"{_pct(d.get('apcer_max'))} | {_pct(d.get('bpcer'))} | "
                     + " | ".join(cells) + f" | {fps} |")
    if "compare" in res:
        c = res["compare"]
        per = c["faces_per_invocation"]
        lines += ["", f"Compared command (timed once per round, same rounds): `{c['command']}`: "
                  f"p50 {c['p50_ms']:.1f} ms, p90 {c['p90_ms']:.1f} ms per invocation"
                  + (f", {c['p50_ms'] / per:.2f} ms/face at p50 ({per} faces)" if per > 1 else "")
                  + "."]
    return "\n".join(lines) + "\n"
