"""DET curve plots (APCER vs BPCER on normal-deviate axes), matplotlib imported lazily."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

from edgefas.metrics.iso30107 import bpcer_at_apcer, error_curves

__all__ = ["plot_det"]

_TICKS = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6)
_HIGH = 0.6  # upper axis limit: a DET plot is about the low-error corner


def _probit(p: ArrayLike, floor: float) -> np.ndarray:
    # Rates of exactly 0 or 1 map to -inf/+inf on the normal-deviate scale, so
    # clip them to the axis edge instead (they are drawn on the border).
    p = np.clip(np.asarray(p, dtype=float), floor, 1.0 - floor)
    return np.vectorize(NormalDist().inv_cdf, otypes=[float])(p)


def _percent(p: float) -> str:
    return f"{100 * p:g}%"


def plot_det(
    curves: Mapping[str, Sequence[ArrayLike]],
    path: str | Path,
    operating_points: Iterable[float] = (0.05, 0.01),
    markers: Mapping[str, tuple[float, float]] | None = None,
    title: str = "DET curve",
) -> Path:
    """Write a DET curve PNG: APCER (x) against BPCER (y), both on probit axes.

    Args:
        curves: ``{name: (scores, is_attack)}`` or ``{name: (scores, is_attack,
            species)}``; with species the curve uses APCER_max.
        path: Output PNG path (parent folders are created).
        operating_points: APCER targets; each curve gets a marker at its
            BPCER@APCER=target point.
        markers: Extra labelled points ``{label: (apcer, bpcer)}``, e.g. the
            deployed threshold measured on the test split.
        title: Plot title.

    Returns:
        The written path.
    """
    # Lazy import so that `import edgefas.metrics` works without matplotlib; the
    # object-oriented Figure + Agg canvas avoids pyplot's global backend state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("curves is empty: nothing to plot")
    targets = tuple(operating_points)
    data = {}
    min_count = np.inf
    for name, spec in curves.items():
        if len(spec) not in (2, 3):
            raise ValueError(f"curve {name!r}: expected (scores, is_attack[, species])")
        _, ap, bp = error_curves(*spec)
        is_attack = np.asarray(spec[1], dtype=bool)
        min_count = min(min_count, is_attack.sum(), (~is_attack).sum())
        points = [bpcer_at_apcer(*spec[:2], t, *spec[2:]) for t in targets]
        data[name] = (ap, bp, points)
    # Lowest visible rate: half of one error on the smallest class, within [1e-4, 1e-2].
    floor = float(np.clip(0.5 / min_count, 1e-4, 1e-2))

    fig = Figure(figsize=(6, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (ap, bp, points) in data.items():
        (line,) = ax.plot(_probit(ap, floor), _probit(bp, floor), label=name, drawstyle="default")
        for t, op in zip(targets, points):
            ax.plot(_probit(op.achieved.value, floor), _probit(op.value.value, floor), "o",
                    color=line.get_color(), markersize=5)
            ax.annotate(f"APCER≤{_percent(t)}", (_probit(op.achieved.value, floor),
                        _probit(op.value.value, floor)), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    for label, (ap_v, bp_v) in (markers or {}).items():
        ax.plot(_probit(ap_v, floor), _probit(bp_v, floor), "k*", markersize=9, label=label)
    lo, hi = float(_probit(floor, floor)), float(_probit(_HIGH, floor))
    ax.plot([lo, hi], [lo, hi], color="0.7", linestyle=":", linewidth=1, label="APCER = BPCER")
    ticks = [t for t in _TICKS if floor <= t <= _HIGH]
    for set_ticks, set_labels, set_lim in ((ax.set_xticks, ax.set_xticklabels, ax.set_xlim),
                                           (ax.set_yticks, ax.set_yticklabels, ax.set_ylim)):
        set_ticks(_probit(ticks, floor))
        set_labels([_percent(t) for t in ticks], fontsize=8)
        set_lim(lo, hi)
    ax.set_xlabel("APCER (attacks accepted)")
    ax.set_ylabel("BPCER (bona fide rejected)")
    ax.set_title(title)
    ax.grid(True, color="0.9")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=120)
    return out
