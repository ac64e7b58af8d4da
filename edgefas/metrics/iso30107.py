"""ISO/IEC 30107-3 presentation attack detection (PAD) metrics, numpy only.

Conventions used throughout:

* ``scores`` are LIVE scores: higher means more likely bona fide.
* ``is_attack`` is True for attack presentations, False for bona fide ones.
* ``species`` (optional) names the attack species of each attack row ("print",
  "mobile", ...); values on bona fide rows are ignored.
* A presentation is ACCEPTED as bona fide when ``score >= threshold``.
  APCER = share of attacks accepted (per species), BPCER = share of bona fide
  rejected (``score < threshold``). APCER_max is the worst species.

Threshold sweeps use the candidate thresholds ``unique(scores)`` plus one value
just above the highest score (accepts nothing). Between two consecutive scores
every error rate is constant, so these candidates reach every achievable
(APCER, BPCER) pair and the returned threshold is always a real score value
(or the "reject all" value), never an interpolation.

When ``species`` is given, the operating points (``bpcer_at_apcer``,
``apcer_at_bpcer``, ``threshold_at_apcer``) and the D-EER use APCER_max, as
ISO/IEC 30107-3 judges a PAD subsystem on its worst attack species; without
species they use the overall APCER (all attacks pooled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

OVERALL = "overall"
_TOL = 1e-12  # float slack when comparing |APCER - BPCER| across thresholds


@dataclass(frozen=True)
class Rate:
    """An error rate that always travels with its counts: ``value = errors / count``."""

    value: float
    errors: int
    count: int
    ci95: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of plain floats/ints."""
        return {"value": self.value, "errors": self.errors, "count": self.count,
                "ci95": None if self.ci95 is None else list(self.ci95)}


@dataclass(frozen=True)
class OperatingPoint:
    """Best achievable error under a bound on the other error.

    For ``bpcer_at_apcer``: ``value`` is the BPCER and ``achieved`` the APCER
    (overall, or APCER_max with species) actually reached at ``threshold``,
    with ``achieved.value <= target``. For ``apcer_at_bpcer`` the roles swap.
    """

    target: float
    threshold: float
    value: Rate
    achieved: Rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"target": self.target, "threshold": self.threshold,
                "value": self.value.to_dict(), "achieved": self.achieved.to_dict()}


@dataclass(frozen=True)
class EerResult:
    """Detection equal error rate (D-EER) and where it was measured."""

    value: float
    threshold: float
    apcer: Rate
    bpcer: Rate
    ci95: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"value": self.value, "threshold": self.threshold,
                "apcer": self.apcer.to_dict(), "bpcer": self.bpcer.to_dict(),
                "ci95": None if self.ci95 is None else list(self.ci95)}


def _rate(errors: Any, count: Any) -> Rate:
    errors, count = round(float(errors)), round(float(count))
    return Rate(errors / count, errors, count)


class _Data:
    """Validated inputs plus the bookkeeping shared by every metric."""

    def __init__(self, scores: ArrayLike, is_attack: ArrayLike, species: ArrayLike | None,
                 *, need_bona_fide: bool = True, need_attack: bool = True) -> None:
        try:
            s = np.asarray(scores, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"scores must be numeric: {exc}") from None
        a = np.asarray(is_attack)
        if s.ndim != 1 or a.ndim != 1:
            raise ValueError("scores and is_attack must be 1-D arrays")
        if s.size == 0:
            raise ValueError("scores is empty")
        if a.shape != s.shape:
            raise ValueError(f"length mismatch: {s.size} scores but {a.size} is_attack labels")
        if not np.isfinite(s).all():
            raise ValueError(f"scores contain {int((~np.isfinite(s)).sum())} NaN/inf values")
        if a.dtype != bool:
            if not (np.issubdtype(a.dtype, np.number) and np.isin(a, (0, 1)).all()):
                raise ValueError("is_attack must be boolean (or 0/1)")
            a = a.astype(bool)
        if need_bona_fide and a.all():
            raise ValueError("no bona fide presentations: this metric needs some")
        if need_attack and not a.any():
            raise ValueError("no attack presentations: this metric needs some")
        self.scores, self.is_attack = s, a
        self.uniq, inv = np.unique(s, return_inverse=True)
        # Candidate thresholds: every score, then one just above the highest.
        self.thresholds = np.append(self.uniq, np.nextafter(self.uniq[-1], np.inf))
        # Strata: 0 = bona fide, 1.. = attack species (sorted) or all attacks.
        self.stratum = np.zeros(s.size, dtype=np.int64)
        self.has_species = species is not None
        if species is None:
            self.species_names: tuple[str, ...] = (OVERALL,)
            self.stratum[a] = 1
        else:
            sp = np.asarray(species).astype(str)
            if sp.shape != s.shape:
                raise ValueError(f"length mismatch: {s.size} scores but {sp.size} species labels")
            att_sp = sp[a]
            if (att_sp == "").any():
                raise ValueError("every attack presentation needs a non-empty species name")
            if (att_sp == OVERALL).any():
                raise ValueError(f"{OVERALL!r} is reserved and cannot be a species name")
            names, codes = np.unique(att_sp, return_inverse=True)
            self.species_names = tuple(str(x) for x in names)
            self.stratum[a] = codes + 1
        # Per stratum: columns sorted by unique-score index, so one reduceat
        # turns any weight matrix into per-score histograms.
        self._plan = []
        for k in range(len(self.species_names) + 1):
            rows = np.flatnonzero(self.stratum == k)
            order = rows[np.argsort(inv[rows], kind="stable")]
            vals = inv[order]
            starts = np.flatnonzero(np.r_[True, vals[1:] != vals[:-1]]) if vals.size else vals
            self._plan.append((order, starts, vals[starts] if vals.size else vals))

    def index(self, threshold: float) -> int:
        """Candidate index with the same decisions as ``threshold``."""
        if np.isnan(threshold):
            raise ValueError("threshold is NaN")
        # Number of unique scores below the threshold = index of the first candidate >= it.
        return int(np.searchsorted(self.uniq, threshold, side="left"))

    def curves(self, weights: np.ndarray | None = None) -> _Curves:
        """Error counts at every candidate for a (b, n) weight batch (None = the data)."""
        if weights is None:
            weights = np.ones((1, self.scores.size), dtype=np.int64)
        hist = np.zeros((len(self._plan), weights.shape[0], self.uniq.size))
        for k, (order, starts, ids) in enumerate(self._plan):
            if order.size:
                hist[k][:, ids] = np.add.reduceat(weights[:, order], starts, axis=1)
        return _Curves(hist, self.has_species)


class _Curves:
    """Errors at every candidate threshold for a batch of b weightings.

    Index k of the last axis means threshold ``thresholds[k]``.
    """

    def __init__(self, hist: np.ndarray, has_species: bool) -> None:
        self.h_bf, self.h_att = hist[0], hist[1:]  # (b, U), (S, b, U)
        zero = np.zeros(hist.shape[:2] + (1,))
        # Bona fide rejected at k: those whose unique-score index is < k.
        self.bf_err = np.concatenate([zero[0], np.cumsum(self.h_bf, axis=-1)], axis=-1)
        # Attacks accepted at k: those whose unique-score index is >= k.
        acc = np.cumsum(self.h_att[..., ::-1], axis=-1)[..., ::-1]
        self.att_err = np.concatenate([acc, zero[1:]], axis=-1)  # (S, b, T)
        self.bf_n = self.h_bf.sum(-1)  # (b,)
        self.att_n = self.h_att.sum(-1)  # (S, b)
        self.has_species = has_species

    def bpcer(self) -> tuple[np.ndarray, np.ndarray]:
        return self.bf_err, np.broadcast_to(self.bf_n[:, None], self.bf_err.shape)

    def apcer(self, worst: bool) -> tuple[np.ndarray, np.ndarray]:
        """(errors, counts) of shape (b, T): overall, or of the worst species per threshold."""
        if not (worst and self.has_species):
            err, n = self.att_err.sum(0), self.att_n.sum(0)
            return err, np.broadcast_to(n[:, None], err.shape)
        # Every species stratum has rows and weight >= 1 in any resample, so no 0/0.
        rates = self.att_err / self.att_n[..., None]
        j = rates.argmax(0)  # ties -> first species alphabetically
        err = np.take_along_axis(self.att_err, j[None], 0)[0]
        return err, self.att_n[j, np.arange(j.shape[0])[:, None]]


# --- index selection on batched curves (all return one index per row) -------------

def _k_bpcer_at_apcer(ap: np.ndarray, target: float) -> np.ndarray:
    # APCER never increases with the threshold: the feasible set is a suffix, and
    # its first element (the lowest threshold) has the lowest BPCER. The last
    # candidate (reject all) always has APCER 0, so one always exists.
    return (ap <= target).argmax(-1)


def _k_apcer_at_bpcer(bp: np.ndarray, target: float) -> np.ndarray:
    # BPCER never decreases with the threshold: the feasible set is a prefix
    # (index 0 = lowest score, BPCER 0); its last element has the lowest APCER.
    return (bp <= target).sum(-1) - 1


def _k_eer(ap: np.ndarray, bp: np.ndarray) -> np.ndarray:
    diff, mean = np.abs(ap - bp), (ap + bp) / 2
    near = diff <= diff.min(-1, keepdims=True) + _TOL
    m = np.where(near, mean, np.inf)
    return (m <= m.min(-1, keepdims=True) + _TOL).argmax(-1)


def _rates(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return pair[0] / pair[1]


def _check_target(target: float) -> float:
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be within [0, 1], got {target}")
    return float(target)


def _pick(pair: tuple[np.ndarray, np.ndarray], k: int) -> Rate:
    return _rate(pair[0][0, k], pair[1][0, k])


# Point-estimate helpers on unit-weight curves, shared by the public functions and evaluate.

def _apcer_dict(d: _Data, c: _Curves, k: int) -> dict[str, Rate]:
    out = {name: _rate(c.att_err[j, 0, k], c.att_n[j, 0])
           for j, name in enumerate(d.species_names) if d.has_species}
    out[OVERALL] = _rate(c.att_err[:, 0, k].sum(), c.att_n[:, 0].sum())
    return out


def _worst(rates: dict[str, Rate]) -> tuple[str, Rate]:
    # Species are in sorted order and max() keeps the first maximum, so ties go to
    # the first name alphabetically, matching _Curves.apcer's argmax.
    per_species = {k: v for k, v in rates.items() if k != OVERALL} or rates
    return max(per_species.items(), key=lambda kv: kv[1].value)


def _op_bpcer_at_apcer(d: _Data, c: _Curves, target: float) -> OperatingPoint:
    ap = c.apcer(worst=True)
    k = int(_k_bpcer_at_apcer(_rates(ap), _check_target(target))[0])
    return OperatingPoint(float(target), float(d.thresholds[k]), _pick(c.bpcer(), k), _pick(ap, k))


def _op_apcer_at_bpcer(d: _Data, c: _Curves, target: float) -> OperatingPoint:
    bp = c.bpcer()
    k = int(_k_apcer_at_bpcer(_rates(bp), _check_target(target))[0])
    return OperatingPoint(float(target), float(d.thresholds[k]), _pick(c.apcer(True), k),
                          _pick(bp, k))


def _eer(d: _Data, c: _Curves) -> EerResult:
    ap, bp = c.apcer(worst=True), c.bpcer()
    k = int(_k_eer(_rates(ap), _rates(bp))[0])
    a, b = _pick(ap, k), _pick(bp, k)
    return EerResult((a.value + b.value) / 2, float(d.thresholds[k]), a, b)


def _auc(c: _Curves) -> np.ndarray:
    h_att = c.h_att.sum(0)
    below = np.cumsum(h_att, -1) - h_att  # attacks strictly below each unique score
    return (c.h_bf * (below + 0.5 * h_att)).sum(-1) / (c.bf_n * c.att_n.sum(0))


# --- public metrics ------------------------------------------------------------------

def apcer(scores: ArrayLike, is_attack: ArrayLike, threshold: float,
          species: ArrayLike | None = None) -> dict[str, Rate]:
    """Attack presentation classification error rate, per species and overall.

    Args:
        scores: Live scores (higher = bona fide).
        is_attack: True for attack presentations.
        threshold: Accept as bona fide when ``score >= threshold``.
        species: Optional attack species name per row (ignored on bona fide rows).

    Returns:
        ``{species: Rate, ..., "overall": Rate}``; only ``"overall"`` without species.
    """
    d = _Data(scores, is_attack, species, need_bona_fide=False)
    return _apcer_dict(d, d.curves(), d.index(threshold))


def apcer_max(scores: ArrayLike, is_attack: ArrayLike, threshold: float,
              species: ArrayLike | None = None) -> Rate:
    """APCER of the worst species (ties: first name alphabetically).

    Args:
        scores, is_attack, threshold, species: See :func:`apcer`.

    Returns:
        The worst species' Rate; the overall APCER when no species are given.
    """
    return _worst(apcer(scores, is_attack, threshold, species))[1]


def bpcer(scores: ArrayLike, is_attack: ArrayLike, threshold: float) -> Rate:
    """Bona fide presentation classification error rate: share with ``score < threshold``.

    Args:
        scores, is_attack, threshold: See :func:`apcer`.

    Returns:
        Rate with the rejected bona fide count and the bona fide total.
    """
    d = _Data(scores, is_attack, None, need_attack=False)
    c, k = d.curves(), d.index(threshold)
    return _rate(c.bf_err[0, k], c.bf_n[0])


def bpcer_by_source(scores: ArrayLike, is_attack: ArrayLike, source: ArrayLike,
                    threshold: float) -> dict[str, Rate]:
    """BPCER of each bona fide source (camera, data set) at ``threshold``, sorted by name.

    Args:
        scores, is_attack, threshold: See :func:`apcer`.
        source: the source of each row; values on attack rows are ignored.
    """
    s, a = np.asarray(scores, dtype=float), np.asarray(is_attack, bool)
    src = np.asarray(source).astype(str)
    bona = ~a
    return {str(g): bpcer(s[bona & (src == g)], np.zeros(int((bona & (src == g)).sum()), bool),
                          threshold)
            for g in sorted(set(src[bona]))}


def bpcer_at_apcer(scores: ArrayLike, is_attack: ArrayLike, target: float,
                   species: ArrayLike | None = None) -> OperatingPoint:
    """Lowest BPCER achievable while APCER <= target (e.g. BPCER@APCER=5%).

    The threshold is the LOWEST candidate whose APCER (APCER_max when species are
    given, overall APCER otherwise) is <= target: the most permissive threshold
    that keeps attacks within the bound, hence the lowest BPCER. If the highest
    score is an attack and target is small this can be "reject all" (BPCER 1).

    Args:
        scores, is_attack, species: See :func:`apcer`.
        target: Bound on APCER in [0, 1].

    Returns:
        OperatingPoint with ``value`` = BPCER, ``achieved`` = APCER, and the threshold.
    """
    d = _Data(scores, is_attack, species)
    return _op_bpcer_at_apcer(d, d.curves(), target)


def apcer_at_bpcer(scores: ArrayLike, is_attack: ArrayLike, target: float,
                   species: ArrayLike | None = None) -> OperatingPoint:
    """Lowest APCER (APCER_max with species) achievable while BPCER <= target.

    The threshold is the HIGHEST candidate whose BPCER is <= target.

    Args:
        scores, is_attack, species: See :func:`apcer`.
        target: Bound on BPCER in [0, 1].

    Returns:
        OperatingPoint with ``value`` = APCER, ``achieved`` = BPCER, and the threshold.
    """
    d = _Data(scores, is_attack, species)
    return _op_apcer_at_bpcer(d, d.curves(), target)


def threshold_at_apcer(scores: ArrayLike, is_attack: ArrayLike, target: float,
                       species: ArrayLike | None = None) -> float:
    """Lowest threshold whose APCER (APCER_max with species) <= target.

    Args:
        scores, is_attack, species, target: See :func:`bpcer_at_apcer`.

    Returns:
        The threshold of :func:`bpcer_at_apcer`.
    """
    return bpcer_at_apcer(scores, is_attack, target, species).threshold


def threshold_at_bpcer(scores: ArrayLike, is_attack: ArrayLike, target: float) -> float:
    """Highest threshold whose BPCER <= target (pick an operating point on a devel split).

    Args:
        scores, is_attack: See :func:`apcer`.
        target: Bound on BPCER in [0, 1].

    Returns:
        The threshold, always one of the scores.
    """
    return apcer_at_bpcer(scores, is_attack, target).threshold


def eer(scores: ArrayLike, is_attack: ArrayLike, species: ArrayLike | None = None,
        bona_fide_source: ArrayLike | None = None) -> EerResult:
    """Detection equal error rate (D-EER).

    Definition: over the candidate thresholds (unique scores plus "reject all"),
    take the one minimising ``|APCER - BPCER|``; ties (within 1e-12) go to the
    lowest ``(APCER + BPCER) / 2``, then to the lowest threshold. D-EER is
    ``(APCER + BPCER) / 2`` at that threshold, with APCER_max when species are
    given. No interpolation: a perfectly separable set gives exactly 0.

    Args:
        scores, is_attack, species: See :func:`apcer`.
        bona_fide_source: optional name of each bona fide row's source (camera, data set);
            values on attack rows are ignored. Given, BPCER is the worst source's
            (BPCER_max), as APCER is the worst species's: a devel set that holds live
            faces of one webcam and of other cameras then cannot hide the second behind
            the first's numbers.

    Returns:
        EerResult with the value, threshold and both rates (with counts) there.
    """
    if bona_fide_source is not None:
        return _eer_worst_source(scores, is_attack, species, bona_fide_source)
    d = _Data(scores, is_attack, species)
    return _eer(d, d.curves())


def _eer_worst_source(scores: ArrayLike, is_attack: ArrayLike, species: ArrayLike | None,
                      source: ArrayLike) -> EerResult:
    d = _Data(scores, is_attack, species)   # validation and candidate thresholds
    src = np.asarray(source).astype(str)
    if src.shape != d.scores.shape:
        raise ValueError(f"length mismatch: {d.scores.size} scores but {src.size} source labels")
    t = d.thresholds

    def worst(groups: list[np.ndarray], errors_of) -> tuple[np.ndarray, np.ndarray]:
        # errors and counts (T,) of the group with the highest rate at each threshold
        err = np.stack([errors_of(np.sort(g)) for g in groups]).astype(float)
        n = np.array([g.size for g in groups], float)[:, None]
        j = (err / n).argmax(0)   # ties -> the first group (sorted names)
        return err[j, np.arange(t.size)], n[j, 0]

    bf = ~d.is_attack
    bf_groups = [d.scores[bf & (src == g)] for g in np.unique(src[bf])]
    sp = (np.asarray(species).astype(str) if species is not None
          else np.full(d.scores.size, OVERALL))
    att_groups = [d.scores[d.is_attack & (sp == g)] for g in np.unique(sp[d.is_attack])]
    bp_err, bp_n = worst(bf_groups, lambda g: np.searchsorted(g, t, side="left"))
    ap_err, ap_n = worst(att_groups, lambda g: g.size - np.searchsorted(g, t, side="left"))
    k = int(_k_eer((ap_err / ap_n)[None], (bp_err / bp_n)[None])[0])
    a, b = _rate(ap_err[k], ap_n[k]), _rate(bp_err[k], bp_n[k])
    return EerResult((a.value + b.value) / 2, float(t[k]), a, b)


def threshold_at_eer(scores: ArrayLike, is_attack: ArrayLike,
                     species: ArrayLike | None = None,
                     bona_fide_source: ArrayLike | None = None) -> float:
    """Threshold of the D-EER (see :func:`eer` for the definition and arguments)."""
    return eer(scores, is_attack, species, bona_fide_source).threshold


def auc(scores: ArrayLike, is_attack: ArrayLike) -> float:
    """P(random bona fide scores higher than random attack), ties counting 1/2.

    This is the Mann-Whitney form of the ROC AUC, computed from sorted counts
    in O(n log n) without forming pairs.

    Args:
        scores, is_attack: See :func:`apcer`.

    Returns:
        AUC in [0, 1]; 1 = perfect separation, 0.5 = chance.
    """
    return float(_auc(_Data(scores, is_attack, None).curves())[0])


def hter(scores: ArrayLike, is_attack: ArrayLike, threshold: float) -> float:
    """LEGACY half total error rate, (APCER_overall + BPCER) / 2.

    The Replay-Attack convention ((FAR + FRR) / 2); not an ISO/IEC 30107-3
    figure, kept only to compare with older papers.

    Args:
        scores, is_attack, threshold: See :func:`apcer`.

    Returns:
        The legacy HTER.
    """
    return (apcer(scores, is_attack, threshold)[OVERALL].value
            + bpcer(scores, is_attack, threshold).value) / 2


def acer(scores: ArrayLike, is_attack: ArrayLike, threshold: float,
         species: ArrayLike | None = None) -> float:
    """LEGACY average classification error rate, (APCER_max + BPCER) / 2.

    OULU-NPU style; ISO/IEC 30107-3 advises against averaging the two different
    error types, so report APCER and BPCER separately and use this only for
    comparison with older papers.

    Args:
        scores, is_attack, threshold, species: See :func:`apcer`.

    Returns:
        The legacy ACER.
    """
    return (apcer_max(scores, is_attack, threshold, species).value
            + bpcer(scores, is_attack, threshold).value) / 2


def error_curves(scores: ArrayLike, is_attack: ArrayLike,
                 species: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """APCER (APCER_max with species) and BPCER at every candidate threshold (DET data).

    Args:
        scores, is_attack, species: See :func:`apcer`.

    Returns:
        ``(thresholds, apcer, bpcer)``, thresholds ascending.
    """
    d = _Data(scores, is_attack, species)
    c = d.curves()
    return d.thresholds.copy(), _rates(c.apcer(True))[0], _rates(c.bpcer())[0]
