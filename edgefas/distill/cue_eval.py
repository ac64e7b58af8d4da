"""Cue evaluation (issue 4, step 5): does a teacher's spoof cue separate live faces from attacks?

``compute_cues`` runs a teacher (DDM pair, AG-FAS generator, DS Net) on aligned crops and times
it; ``evaluate_cue_on_protocol`` scores (a) the fixed, unsupervised mean |cue| (sign fixed on
train) and (b) a logistic regression on cue statistics fit on train, with the threshold chosen at
the devel D-EER and APCER per species / BPCER measured on test at that threshold, counts beside
every figure. The same evaluation runs the colour + frequency reference of
:mod:`edgefas.distill.cue_features`, which every cue must beat (``shared/notes/diffusion-cpu.md``).

Licence: grids (``save_grid``) of Replay-Attack faces must NOT be committed: the data set's EULA
allows research use only and no redistribution of its images. Grids under ``docs/`` use only the
london and silentface fixtures.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..metrics import auc, eer, evaluate
from ..metrics.bootstrap import wilson_ci
from ..runtime.preprocess import Contract, to_tensor
from .errors import TeacherConfigError

SPLITS = ("train", "devel", "test")


@dataclass(frozen=True)
class DdmPair:
    """DDM's two diffusion teachers: ``eps_s`` (all faces, inversion), ``eps_g`` (live, generation)."""

    eps_s: Any   # DiffusionTeacher
    eps_g: Any   # DiffusionTeacher


@dataclass(frozen=True)
class CueResult:
    """A teacher's output on a batch of crops.

    ``restored``: (N, S, S, 3) uint8 BGR, the live estimate in the crops' own format (clipped and
    rounded). ``cue``: (N, 3, S, S) float32, input minus the unclipped float live estimate, in the
    contract's [-1, 1] units, channels in RGB order.
    ``nfe``: network evaluations per face; ``ms_per_face``: teacher time (network calls and the
    copy back to the host, measured per batch with ``time.perf_counter``) over the faces.
    """

    restored: np.ndarray
    cue: np.ndarray
    nfe: int
    ms_per_face: float
    kind: str
    params: dict = field(default_factory=dict)


def _check_range(contract: Contract) -> None:
    # Diffusion schedules and the DS Net's HSV branch assume pixels in [-1, 1], NCHW.
    if contract.layout != "NCHW":
        raise TeacherConfigError(f"teachers take NCHW tensors; the contract says {contract.layout}")
    ends = to_tensor(np.array([[[[0, 0, 0]]], [[[255, 255, 255]]]], np.uint8), contract)
    if not (np.allclose(ends[0], -1) and np.allclose(ends[1], 1)):
        raise TeacherConfigError("teachers need a contract that maps pixels to [-1, 1] (mean = std = 0.5)")


def _to_uint8(x: np.ndarray, contract: Contract) -> np.ndarray:
    """The inverse of ``to_tensor`` for (N, 3, S, S) floats (NCHW contracts)."""
    lo, hi = contract.value_range
    std, mean = (np.asarray(v, np.float32)[:, None, None] for v in (contract.std, contract.mean))
    x = x * std + mean
    x = ((x - lo) / (hi - lo) * 255.0).transpose(0, 2, 3, 1)
    x = x[..., ::-1] if contract.color_order == "rgb" else x
    return np.ascontiguousarray(np.clip(np.rint(x), 0, 255).astype(np.uint8))


def _runner(teacher, kw: dict):
    """(kind, fn(x) -> (restored, cue, nfe), params) for a teacher; checks the keyword arguments."""
    from .agfas import defake_agfas
    from .ddm import despoof_ddm
    from .despoof_net import DespoofNet
    from .student import ConsistencyStudent, student_despoof
    from .train_teacher import DiffusionTeacher

    def need(*names: str, optional: tuple[str, ...] = ()) -> dict:
        missing = [n for n in names if n not in kw]
        extra = sorted(set(kw) - set(names) - set(optional))
        if missing or extra:
            raise TeacherConfigError(f"this teacher takes {', '.join(names + optional) or 'no options'}; "
                                     f"missing {missing}, unexpected {extra}")
        return dict(kw)

    if isinstance(teacher, DdmPair):
        p = need("t0", "steps")
        s, g = teacher.eps_s, teacher.eps_g
        if s.schedule != g.schedule or s.condition is not None or g.condition is not None:
            raise TeacherConfigError("DDM needs two unconditional teachers with the same noise schedule")

        def fn(x):
            r = despoof_ddm(x, s.unet, g.unet, g.schedule, t0=p["t0"], steps=p["steps"])
            return r.restored, r.noise, r.nfe
        return "ddm", fn, p
    if isinstance(teacher, DiffusionTeacher):
        if teacher.kind != "agfas":
            raise TeacherConfigError(f"a single {teacher.kind!r} teacher cannot make a cue; DDM needs "
                                     "DdmPair(eps_s, eps_g)")
        p = need("t0", "steps", optional=("noise_seed",))

        def fn(x):
            r = defake_agfas(x, teacher.unet, teacher.schedule, t0=p["t0"], steps=p["steps"],
                             noise_seed=p.get("noise_seed", 0), condition=teacher.condition)
            return r.output, r.cue, r.nfe
        return "agfas", fn, p
    if isinstance(teacher, ConsistencyStudent):
        p = need(optional=("nfe",))
        n = p.get("nfe") or teacher.config.nfe

        def fn(x):
            restored, cue = student_despoof(teacher, x, nfe=n)
            return restored, cue, n
        return "student", fn, {"nfe": n}
    if isinstance(teacher, DespoofNet):
        need()
        teacher.eval()

        def fn(x):
            out = teacher(x)
            return out.live, out.noise, 1
        return "despoof_net", fn, {}
    raise TeacherConfigError(f"unknown teacher {type(teacher).__name__}; pass DdmPair, an agfas "
                             "DiffusionTeacher or a DespoofNet")


def compute_cues(teacher, crops_uint8: np.ndarray, contract: Contract, *, batch: int = 32,
                 **teacher_kwargs) -> CueResult:
    """Run ``teacher`` on (N, S, S, 3) uint8 BGR crops in batches; returns restored faces and cues.

    ``teacher``: a :class:`DdmPair` (``t0``, ``steps`` each way), an AG-FAS ``DiffusionTeacher``
    (``t0``, ``steps``, optional ``noise_seed``) or a ``DespoofNet`` (no options). The networks
    run on the device their parameters are on; S must suit them (multiples of 8 for the DS Net
    and the cpu UNet).
    """
    import torch

    if not isinstance(crops_uint8, np.ndarray) or crops_uint8.dtype != np.uint8 or crops_uint8.ndim != 4 \
            or crops_uint8.shape[-1] != 3 or len(crops_uint8) == 0:
        raise TeacherConfigError(f"crops must be a non-empty (N, S, S, 3) uint8 array, got "
                                 f"{getattr(crops_uint8, 'shape', None)} {getattr(crops_uint8, 'dtype', '')}")
    if batch < 1:
        raise TeacherConfigError(f"batch must be >= 1, got {batch}")
    _check_range(contract)
    kind, fn, params = _runner(teacher, teacher_kwargs)
    net = teacher.eps_g.unet if kind == "ddm" else teacher.unet if kind in ("agfas", "student") else teacher
    device = next(net.parameters()).device
    restored, cues, nfe, seconds = [], [], 0, 0.0
    for i in range(0, len(crops_uint8), batch):
        x = torch.from_numpy(to_tensor(crops_uint8[i:i + batch], contract)).to(device)
        t = time.perf_counter()
        with torch.no_grad():
            out, cue, nfe = fn(x)
            out, cue = out.float().cpu().numpy(), cue.float().cpu().numpy()   # waits for the device
        seconds += time.perf_counter() - t
        restored.append(_to_uint8(out, contract))
        cues.append(cue[:, ::-1] if contract.color_order == "bgr" else cue)   # always RGB
    return CueResult(restored=np.concatenate(restored), cue=np.ascontiguousarray(np.concatenate(cues)),
                     nfe=nfe, ms_per_face=1000.0 * seconds / len(crops_uint8), kind=kind,
                     params={**params, "batch": batch, "device": str(device),
                             "threads": torch.get_num_threads()})


def _check_xy(features: np.ndarray, is_attack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(features, np.float64), np.asarray(is_attack, bool)
    if x.ndim != 2 or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"features must be (N, K) with N labels; got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"features hold {int((~np.isfinite(x)).sum())} NaN/inf values")
    return x, y


def fit_cue_classifier(train_features: np.ndarray, train_is_attack: np.ndarray, *, C: float = 1.0):
    """StandardScaler + LogisticRegression (classes weighted equally), fit on the train split only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _check_xy(train_features, train_is_attack)
    if y.all() or not y.any():
        raise ValueError("the classifier needs bona fide and attack faces in train")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=5000))
    return model.fit(x, y.astype(int))


def score_live(model, features: np.ndarray) -> np.ndarray:
    """Live scores (higher = bona fide): minus the classifier's attack log-odds."""
    x, _ = _check_xy(features, np.zeros(len(features), bool))
    return -model.decision_function(x).astype(np.float64)


def _counts(is_attack: np.ndarray, species: np.ndarray) -> dict:
    sp, n = np.unique(np.asarray(species).astype(str)[is_attack], return_counts=True)
    return {"bona_fide": int((~is_attack).sum()), "attack": int(is_attack.sum()),
            "species": {str(k): int(v) for k, v in zip(sp, n)}}


def _auc_per_species(live: np.ndarray, is_attack: np.ndarray, species: np.ndarray) -> dict:
    """AUC of all bona fide faces against each attack species alone, with the counts."""
    out = {}
    for sp in sorted(set(species[is_attack].tolist())):
        keep = ~is_attack | (species == sp)
        out[sp] = {"value": auc(live[keep], is_attack[keep]), "bona_fide": int((~is_attack).sum()),
                   "attack": int((is_attack & (species == sp)).sum())}
    return out


def _assess(live: Mapping[str, np.ndarray], is_attack: Mapping[str, np.ndarray],
            species: Mapping[str, np.ndarray], extra_live: Mapping[str, np.ndarray], *,
            bootstrap: int, groups: np.ndarray | None) -> dict:
    # eer(...).threshold is exactly threshold_at_eer(devel, species): APCER_max = BPCER on devel.
    dv = eer(live["devel"], is_attack["devel"], species["devel"])
    report = evaluate(live["test"], is_attack["test"], dv.threshold, species=species["test"],
                      bootstrap=bootstrap, groups=groups)
    out = {"threshold": float(dv.threshold), "threshold_source": "devel D-EER (APCER_max = BPCER)",
           "devel_eer": dv.to_dict(),
           "auc": {s: {"value": auc(live[s], is_attack[s]), "bona_fide": int((~is_attack[s]).sum()),
                       "attack": int(is_attack[s].sum())} for s in SPLITS},
           "auc_per_species": {s: _auc_per_species(live[s], is_attack[s], species[s]) for s in SPLITS},
           "test": report.to_dict(), "test_markdown": report.to_markdown()}
    if extra_live:
        out["p4"] = {}
        for name, s in extra_live.items():
            errors, n = int((s < dv.threshold).sum()), len(s)
            out["p4"][name] = {"bpcer": errors / n if n else float("nan"), "errors": errors,
                               "bona_fide": n, "ci95": list(wilson_ci(errors, n)),
                               "threshold": float(dv.threshold)}
    return out


def evaluate_cue_on_protocol(protocol: str, features_by_split: Mapping[str, np.ndarray],
                             is_attack_by_split: Mapping[str, np.ndarray],
                             species_by_split: Mapping[str, np.ndarray], *,
                             unsupervised_score_by_split: Mapping[str, np.ndarray] | None = None,
                             extra_bona_fide: Mapping[str, np.ndarray] | None = None,
                             extra_bona_fide_unsupervised: Mapping[str, np.ndarray] | None = None,
                             groups_test: np.ndarray | None = None, name: str = "cue",
                             feature_names: Sequence[str] | None = None, bootstrap: int = 0) -> dict:
    """ISO figures of one feature set on one protocol's train / devel / test splits (JSON-ready).

    Methods: ``unsupervised`` (when ``unsupervised_score_by_split`` is given: the fixed score,
    e.g. mean |cue|, with its sign fixed on train so that live scores higher) and ``classifier``
    (:func:`fit_cue_classifier` on train). Each: threshold at the devel D-EER, AUC on every split,
    the full test report at that threshold (APCER per species, BPCER, with counts; bootstrap CIs
    resampling ``groups_test`` clients when ``bootstrap`` > 0) and, for P4, BPCER at that
    threshold on each bona-fide-only set of ``extra_bona_fide`` (features; the unsupervised
    method needs ``extra_bona_fide_unsupervised`` scores).
    """
    ia = {s: np.asarray(is_attack_by_split[s], bool) for s in SPLITS}
    sp = {s: np.asarray(species_by_split[s]).astype(str) for s in SPLITS}
    feats = {s: _check_xy(features_by_split[s], ia[s])[0] for s in SPLITS}
    for s in SPLITS:
        if len(sp[s]) != len(ia[s]) or ia[s].all() or not ia[s].any():
            raise ValueError(f"{s}: need species per face and both bona fide and attack faces")
    out: dict[str, Any] = {"protocol": protocol, "name": name,
                           "counts": {s: _counts(ia[s], sp[s]) for s in SPLITS}, "methods": {}}
    extra = dict(extra_bona_fide or {})
    if extra:
        out["counts"]["p4"] = {k: len(v) for k, v in extra.items()}
    if unsupervised_score_by_split is not None:
        u = {s: np.asarray(unsupervised_score_by_split[s], np.float64) for s in SPLITS}
        m_att, m_bf = float(u["train"][ia["train"]].mean()), float(u["train"][~ia["train"]].mean())
        sign = -1.0 if m_att > m_bf else 1.0   # fixed on train, never looked at again
        ex = {k: sign * np.asarray(v, np.float64) for k, v in (extra_bona_fide_unsupervised or {}).items()}
        out["methods"]["unsupervised"] = {
            "description": "fixed score, sign fixed on train", "sign": sign,
            "train_mean": {"bona_fide": m_bf, "attack": m_att},
            **_assess({s: sign * u[s] for s in SPLITS}, ia, sp, ex, bootstrap=bootstrap, groups=groups_test)}
    model = fit_cue_classifier(feats["train"], ia["train"])
    clf: dict[str, Any] = {"description": "StandardScaler + LogisticRegression(class_weight=balanced), fit "
                                          "on train", "n_features": int(feats["train"].shape[1])}
    if feature_names is not None:
        coef = model[-1].coef_[0]   # on standardised features; positive = pushes towards attack
        clf["coefficients"] = {str(k): float(c) for k, c in zip(feature_names, coef)}
    out["methods"]["classifier"] = {
        **clf, **_assess({s: score_live(model, feats[s]) for s in SPLITS}, ia, sp,
                         {k: score_live(model, v) for k, v in extra.items()},
                         bootstrap=bootstrap, groups=groups_test)}
    return out


def _pct(r: Mapping) -> str:
    return f"{100 * r['value']:.2f}% ({r['errors']}/{r['count']})"


def results_table_markdown(results: Iterable[Mapping]) -> str:
    """Markdown tables of :func:`evaluate_cue_on_protocol` results, counts beside every figure."""
    results = list(results)
    lines = ["| Protocol | Features | Method | Train BF / AP | Devel AUC | Devel D-EER | Threshold | "
             "Test AUC (BF × AP) | Test APCER per species | APCER_max | BPCER | Test D-EER |",
             "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    p4 = []
    for r in results:
        c = r["counts"]["train"]
        for method, m in r["methods"].items():
            t, dv = m["test"], m["devel_eer"]
            species = "; ".join(f"{k} {_pct(v)}" for k, v in t["apcer"].items() if k != "overall")
            lines.append(
                f"| {r['protocol']} | {r['name']} | {method} | {c['bona_fide']} / {c['attack']} | "
                f"{m['auc']['devel']['value']:.4f} | {100 * dv['value']:.2f}% | {m['threshold']:.4g} | "
                f"{t['auc']['value']:.4f} ({t['n_bona_fide']} × {t['n_attack']}) | {species} | "
                f"{_pct(t['apcer_max'])} | {_pct(t['bpcer'])} | {100 * t['eer']['value']:.2f}% |")
            for name, b in m.get("p4", {}).items():
                p4.append(f"| {r['protocol']} | {r['name']} | {method} | {name} | {100 * b['bpcer']:.2f}% "
                          f"({b['errors']}/{b['bona_fide']}) | {100 * b['ci95'][0]:.1f}–"
                          f"{100 * b['ci95'][1]:.1f}% | {b['threshold']:.4g} |")
    text = "\n".join(lines) + "\n"
    if p4:
        text += ("\nP4, unseen bona fide: BPCER at the devel threshold (Wilson 95% interval)\n\n"
                 "| Protocol | Features | Method | Set | BPCER (errors/count) | 95% CI | Threshold |\n"
                 "|---|---|---|---|---:|---|---:|\n" + "\n".join(p4) + "\n")
    return text


GRID_LABEL_W, GRID_PAD, GRID_HEADER_H = 150, 4, 22


def _cell(img: np.ndarray, cell: int) -> np.ndarray:
    return cv2.resize(img, (cell, cell), interpolation=cv2.INTER_NEAREST)   # keeps pixel texture


def save_grid(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: str | Path, *,
              cell: int = 128, amplify: float = 4.0) -> Path:
    """PNG grid, one row per face: label | input | restored | amplified |cue|.

    Each row is (label, input (S, S, 3) uint8 BGR, restored uint8 BGR, cue float (3, S, S) or
    (S, S, 3) in RGB order and the contract's [-1, 1] units). The cue column shows
    ``clip(amplify * |cue|, 0, 1)``: with x4, a residual of 1/4 (32 grey levels) is white.
    Image size: ``GRID_HEADER_H + n * (cell + GRID_PAD) + GRID_PAD`` by
    ``GRID_LABEL_W + 3 * (cell + GRID_PAD) + GRID_PAD``. Never commit grids of Replay-Attack faces.
    """
    if not rows:
        raise ValueError("save_grid needs at least one row")
    h = GRID_HEADER_H + len(rows) * (cell + GRID_PAD) + GRID_PAD
    w = GRID_LABEL_W + 3 * (cell + GRID_PAD) + GRID_PAD
    grid = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for j, title in enumerate(("input", "restored", f"|cue| x{amplify:g}")):
        cv2.putText(grid, title, (GRID_LABEL_W + j * (cell + GRID_PAD) + GRID_PAD, 15), font, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    for i, (label, inp, restored, cue) in enumerate(rows):
        cue = np.asarray(cue, np.float32)
        if cue.ndim == 3 and cue.shape[0] == 3 and cue.shape[-1] != 3:
            cue = cue.transpose(1, 2, 0)
        amp = (np.clip(amplify * np.abs(cue), 0, 1) * 255).round().astype(np.uint8)[..., ::-1]   # RGB -> BGR
        y = GRID_HEADER_H + i * (cell + GRID_PAD) + GRID_PAD
        for j, img in enumerate((inp, restored, np.ascontiguousarray(amp))):
            x = GRID_LABEL_W + j * (cell + GRID_PAD) + GRID_PAD
            grid[y:y + cell, x:x + cell] = _cell(np.asarray(img, np.uint8), cell)
        line, k = "", 0
        words = [w[j:j + 17] for w in str(label).split() for j in range(0, len(w), 17)]
        for word in [*words, None]:   # wrap at 17 characters: the label column is 150 px wide
            if word is not None and len(line) + len(word) < 17:
                line = f"{line} {word}".strip()
                continue
            if line and 16 * (k + 1) < cell:
                cv2.putText(grid, line, (GRID_PAD, y + 16 + 16 * k), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
                k += 1
            line = word or ""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), grid, [cv2.IMWRITE_PNG_COMPRESSION, 9]):   # grids go into docs/
        raise OSError(f"could not write {path}")
    return path
