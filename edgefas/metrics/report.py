"""The full ISO/IEC 30107-3 report: every figure at one threshold, with counts and
bootstrap 95 % intervals (see :mod:`edgefas.metrics.iso30107` for the definitions)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from edgefas.metrics.bootstrap import iter_resample_weights, percentile_ci, wilson_ci
from edgefas.metrics.iso30107 import (  # noqa: F401  (private helpers shared on purpose)
    OVERALL,
    EerResult,
    OperatingPoint,
    Rate,
    _apcer_dict,
    _auc,
    _check_target,
    _Curves,
    _Data,
    _eer,
    _k_apcer_at_bpcer,
    _k_bpcer_at_apcer,
    _k_eer,
    _op_apcer_at_bpcer,
    _op_bpcer_at_apcer,
    _rate,
    _rates,
    _worst,
)


@dataclass(frozen=True)
class Estimate:
    """A figure without a natural error count (AUC, legacy averages) and its CI."""

    value: float
    ci95: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"value": self.value, "ci95": None if self.ci95 is None else list(self.ci95)}


@dataclass(frozen=True)
class PadReport:
    """Every ISO/IEC 30107-3 figure at one threshold, with counts and 95% CIs.

    ``apcer`` holds each species plus ``"overall"``. Operating points and D-EER
    use APCER_max when ``worst_species`` is True (species were given). CIs are
    percentile bootstrap intervals (None when ``n_bootstrap`` is 0); the
    operating points and D-EER re-pick their threshold inside every resample.
    """

    threshold: float
    n_bona_fide: int
    n_attack: int
    species_counts: dict[str, int]
    apcer: dict[str, Rate]
    apcer_max: Rate
    apcer_max_species: str
    bpcer: Rate
    bpcer_at_apcer: dict[float, OperatingPoint]
    apcer_at_bpcer: dict[float, OperatingPoint]
    eer: EerResult
    auc: Estimate
    legacy_hter: Estimate
    legacy_acer: Estimate
    worst_species: bool
    n_bootstrap: int
    seed: int
    grouped_bootstrap: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (plain floats, ints, strings, lists)."""
        return {
            "threshold": self.threshold, "n_bona_fide": self.n_bona_fide,
            "n_attack": self.n_attack, "species_counts": dict(self.species_counts),
            "apcer": {k: v.to_dict() for k, v in self.apcer.items()},
            "apcer_max": self.apcer_max.to_dict(), "apcer_max_species": self.apcer_max_species,
            "bpcer": self.bpcer.to_dict(),
            "bpcer_at_apcer": {str(t): op.to_dict() for t, op in self.bpcer_at_apcer.items()},
            "apcer_at_bpcer": {str(t): op.to_dict() for t, op in self.apcer_at_bpcer.items()},
            "eer": self.eer.to_dict(), "auc": self.auc.to_dict(),
            "legacy_hter": self.legacy_hter.to_dict(), "legacy_acer": self.legacy_acer.to_dict(),
            "worst_species": self.worst_species, "n_bootstrap": self.n_bootstrap,
            "seed": self.seed, "grouped_bootstrap": self.grouped_bootstrap,
        }

    def to_markdown(self) -> str:
        """Markdown table with the counts beside every figure; legacy rows are labelled."""
        def pct(v: float) -> str:
            return f"{100 * v:.2f}%"

        def ci(x: tuple[float, float] | None) -> str:
            return "n/a" if x is None else f"{pct(x[0])} – {pct(x[1])}"

        def cnt(r: Rate) -> str:
            return f"{r.errors} / {r.count}"

        ap_name = "APCER_max" if self.worst_species else "APCER"
        thr = f"{self.threshold:.6g}"
        rows = [(f"APCER ({k})", pct(r.value), ci(r.ci95), cnt(r), thr)
                for k, r in self.apcer.items()]
        if self.worst_species:
            rows.append((f"APCER_max ({self.apcer_max_species})", pct(self.apcer_max.value),
                         ci(self.apcer_max.ci95), cnt(self.apcer_max), thr))
        rows.append(("BPCER", pct(self.bpcer.value), ci(self.bpcer.ci95), cnt(self.bpcer), thr))
        for t, op in self.bpcer_at_apcer.items():
            rows.append((f"BPCER @ {ap_name} ≤ {pct(t)}", pct(op.value.value), ci(op.value.ci95),
                         f"{cnt(op.value)} ({ap_name} {cnt(op.achieved)})", f"{op.threshold:.6g}"))
        for t, op in self.apcer_at_bpcer.items():
            rows.append((f"{ap_name} @ BPCER ≤ {pct(t)}", pct(op.value.value), ci(op.value.ci95),
                         f"{cnt(op.value)} (BPCER {cnt(op.achieved)})", f"{op.threshold:.6g}"))
        e = self.eer
        rows.append(("D-EER", pct(e.value), ci(e.ci95),
                     f"{ap_name} {cnt(e.apcer)}, BPCER {cnt(e.bpcer)}", f"{e.threshold:.6g}"))
        pairs = f"{self.n_bona_fide} BF × {self.n_attack} AP"
        rows.append(("AUC", f"{self.auc.value:.4f}", "n/a" if self.auc.ci95 is None else
                     f"{self.auc.ci95[0]:.4f} – {self.auc.ci95[1]:.4f}", pairs, "–"))
        rows.append(("HTER (legacy)", pct(self.legacy_hter.value), ci(self.legacy_hter.ci95),
                     f"APCER {cnt(self.apcer[OVERALL])}, BPCER {cnt(self.bpcer)}", thr))
        rows.append(("ACER (legacy)", pct(self.legacy_acer.value), ci(self.legacy_acer.ci95),
                     f"APCER_max {cnt(self.apcer_max)}, BPCER {cnt(self.bpcer)}", thr))
        species = ", ".join(f"{k} {v}" for k, v in self.species_counts.items())
        boot = (f"95% CI: percentile bootstrap, {self.n_bootstrap} resamples, seed {self.seed}"
                + (", resampling groups" if self.grouped_bootstrap else "")
                if self.n_bootstrap else "no bootstrap")
        head = (f"Threshold {thr}: {self.n_bona_fide} bona fide, {self.n_attack} attack "
                f"presentations{f' ({species})' if species else ''}; {boot}.\n\n")
        lines = ["| Figure | Value | 95% CI | Errors / count | Threshold |",
                 "|---|---:|---|---|---:|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return head + "\n".join(lines) + "\n"


def _batch_stats(d: _Data, c: _Curves, k: int,
                 targets: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Every bootstrapped figure for each row of a weight batch, all vectorised."""
    ap_all, ap_w, bp = _rates(c.apcer(False)), _rates(c.apcer(True)), _rates(c.bpcer())
    rows = np.arange(bp.shape[0])
    out = {"apcer/" + OVERALL: ap_all[:, k], "apcer_max": ap_w[:, k], "bpcer": bp[:, k]}
    if d.has_species:
        for j, name in enumerate(d.species_names):
            out["apcer/" + name] = c.att_err[j, :, k] / c.att_n[j]
    for t in targets:
        out[f"bpcer@{t}"] = bp[rows, _k_bpcer_at_apcer(ap_w, t)]
        out[f"apcer@{t}"] = ap_w[rows, _k_apcer_at_bpcer(bp, t)]
    ke = _k_eer(ap_w, bp)
    out["eer"] = (ap_w[rows, ke] + bp[rows, ke]) / 2
    out["auc"] = _auc(c)
    out["hter"] = (ap_all[:, k] + bp[:, k]) / 2
    out["acer"] = (ap_w[:, k] + bp[:, k]) / 2
    return out


def evaluate(scores: ArrayLike, is_attack: ArrayLike, threshold: float,
             species: ArrayLike | None = None, bootstrap: int = 1000, seed: int = 0,
             groups: ArrayLike | None = None,
             targets: tuple[float, ...] = (0.05, 0.01)) -> PadReport:
    """Compute every figure at ``threshold`` with counts and bootstrap 95% CIs.

    Args:
        scores, is_attack, threshold, species: See :func:`apcer`. The threshold
            should come from a development split, not from these scores.
        bootstrap: Number of resamples (0 = no CIs). Bona fide and each attack
            species are resampled separately, so their counts stay fixed.
        seed: Bootstrap seed; the same seed gives the same intervals.
        groups: Optional client id per presentation: resample whole clients.
        targets: Bounds for BPCER@APCER and APCER@BPCER operating points.

    Returns:
        A frozen PadReport.
    """
    d = _Data(scores, is_attack, species)
    targets = tuple(_check_target(t) for t in targets)
    k, c = d.index(threshold), d.curves()
    cis: dict[str, tuple[float, float]] = {}
    if bootstrap:
        reps: dict[str, list[np.ndarray]] = {}
        for w in iter_resample_weights(d.stratum, int(bootstrap), seed, groups):
            for name, v in _batch_stats(d, d.curves(w), k, targets).items():
                reps.setdefault(name, []).append(v)
        cis = {name: percentile_ci(np.concatenate(v)) for name, v in reps.items()}
    def with_ci(r: Rate, key: str) -> Rate:
        ci = cis.get(key)
        if ci is not None and r.count and r.errors in (0, r.count):
            # no resample of a set without errors has one: the percentile interval collapses
            # to 0-0 %; the Wilson interval bounds what so few presentations can show
            ci = wilson_ci(r.errors, r.count)
        return replace(r, ci95=ci)

    ap = {name: with_ci(r, "apcer/" + name) for name, r in _apcer_dict(d, c, k).items()}
    worst_name, worst = _worst(ap)
    bp = with_ci(_rate(c.bf_err[0, k], c.bf_n[0]), "bpcer")

    def op(point: OperatingPoint, key: str) -> OperatingPoint:
        return replace(point, value=replace(point.value, ci95=cis.get(key)))

    return PadReport(
        threshold=float(threshold), n_bona_fide=int(c.bf_n[0]), n_attack=int(c.att_n[:, 0].sum()),
        species_counts={n: int(c.att_n[j, 0]) for j, n in enumerate(d.species_names)}
        if d.has_species else {},
        apcer=ap, apcer_max=with_ci(worst, "apcer_max"),
        apcer_max_species=worst_name, bpcer=bp,
        bpcer_at_apcer={t: op(_op_bpcer_at_apcer(d, c, t), f"bpcer@{t}") for t in targets},
        apcer_at_bpcer={t: op(_op_apcer_at_bpcer(d, c, t), f"apcer@{t}") for t in targets},
        eer=replace(_eer(d, c), ci95=cis.get("eer")),
        auc=Estimate(float(_auc(c)[0]), cis.get("auc")),
        legacy_hter=Estimate((ap[OVERALL].value + bp.value) / 2, cis.get("hter")),
        legacy_acer=Estimate((worst.value + bp.value) / 2, cis.get("acer")),
        worst_species=d.has_species, n_bootstrap=int(bootstrap), seed=int(seed),
        grouped_bootstrap=groups is not None,
    )
