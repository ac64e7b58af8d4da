"""Stratified, optionally clustered, percentile bootstrap, vectorised with numpy.

A resample is represented by an integer *weight* per presentation (how many times
it was drawn), so one ``(n_resamples, n)`` matrix describes a whole batch of
resamples and the metrics in :mod:`edgefas.metrics.iso30107` evaluate all of them
at once with array operations instead of a Python loop per resample.

Resampling is done separately inside each stratum (bona fide, and each attack
species), so the number of presentations of each kind stays fixed: a resample can
never lose every attack of a rare species, which would make its APCER undefined.
With ``groups`` (e.g. client ids), whole groups are drawn with replacement inside
each stratum instead of single presentations, because presentations of the same
client are correlated and treating them as independent gives intervals that are
too narrow (cluster bootstrap). Counts then vary a little between resamples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["bootstrap_ci", "iter_resample_weights", "percentile_ci", "resample_weights", "wilson_ci"]

# Cells of the weight matrix generated per chunk (~32 MiB of int64): bounds memory
# for large evaluations while keeping chunks big enough to stay vectorised. The
# chunk size depends only on n, so results for a given seed never depend on it.
_MAX_CELLS = 1 << 22


def iter_resample_weights(
    strata: ArrayLike,
    n_resamples: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> Iterator[np.ndarray]:
    """Yield chunks of bootstrap weights, resampling inside each stratum.

    Args:
        strata: Label per presentation (e.g. ``is_attack`` or a species code);
            presentations are only ever resampled among their own stratum.
        n_resamples: Total number of resamples over all chunks.
        seed: Seed of the ``numpy.random.default_rng`` generator; a fixed seed
            gives identical weights on every call.
        groups: Optional cluster label per presentation (e.g. client id). When
            given, whole groups are drawn with replacement within each stratum.

    Yields:
        int64 arrays of shape ``(b, n)``: ``w[r, i]`` is how many times
        presentation ``i`` appears in resample ``r``.
    """
    strata = np.asarray(strata)
    n = strata.shape[0] if strata.ndim == 1 else -1
    if n <= 0:
        raise ValueError("strata must be a non-empty 1-D array")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != strata.shape:
            raise ValueError(
                f"groups has length {groups.shape[0] if groups.ndim else 0}, expected {n}"
            )
    _, stratum_of = np.unique(strata, return_inverse=True)
    plan = []  # per stratum: its rows, the group index of each row, number of groups
    for k in range(int(stratum_of.max()) + 1):
        rows = np.flatnonzero(stratum_of == k)
        if groups is None:
            group_of = np.arange(rows.size)
        else:
            _, group_of = np.unique(groups[rows], return_inverse=True)
        plan.append((rows, group_of, int(group_of.max()) + 1))

    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // n)
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        weights = np.empty((b, n), dtype=np.int64)
        for rows, group_of, n_groups in plan:
            draws = rng.integers(0, n_groups, size=(b, n_groups))
            # Count draws per (resample, group) in one bincount by offsetting each
            # resample's group ids into its own block.
            flat = (np.arange(b)[:, None] * n_groups + draws).ravel()
            counts = np.bincount(flat, minlength=b * n_groups).reshape(b, n_groups)
            weights[:, rows] = counts[:, group_of]
        yield weights


def resample_weights(
    strata: ArrayLike,
    n_resamples: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> np.ndarray:
    """All bootstrap weights at once; see :func:`iter_resample_weights`.

    Returns:
        int64 array of shape ``(n_resamples, n)``.
    """
    return np.concatenate(list(iter_resample_weights(strata, n_resamples, seed, groups)))


def percentile_ci(samples: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the given replicate values.

    Args:
        samples: Statistic computed on each resample. NaN replicates (a
            statistic undefined on that resample) are ignored.
        confidence: Coverage of the two-sided interval, e.g. 0.95.

    Returns:
        ``(low, high)`` as plain floats; ``(nan, nan)`` if every replicate is NaN.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(samples, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return (float(low), float(high))


def bootstrap_ci(
    statistic: Callable[[np.ndarray], ArrayLike],
    strata: ArrayLike,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of a vectorised, weight-based statistic.

    Args:
        statistic: Maps a weight matrix of shape ``(b, n)`` to ``b`` values, one
            per resample (e.g. ``lambda w: (w * err).sum(1) / w.sum(1)``).
        strata: Label per presentation; resampling is done within each stratum.
        n_resamples: Number of resamples.
        seed: Random seed (fixed seed -> identical interval).
        groups: Optional cluster label per presentation (see
            :func:`iter_resample_weights`).
        confidence: Coverage of the interval.

    Returns:
        ``(low, high)``.
    """
    values = [
        np.asarray(statistic(w), dtype=float).reshape(w.shape[0])
        for w in iter_resample_weights(strata, n_resamples, seed, groups)
    ]
    return percentile_ci(np.concatenate(values), confidence)


def wilson_ci(errors: int, count: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion (sound even at 0 errors)."""
    if count == 0:
        return (float("nan"), float("nan"))
    p = errors / count
    den = 1 + z * z / count
    mid = (p + z * z / (2 * count)) / den
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))
