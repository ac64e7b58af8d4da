"""Platt score calibration as the bundle manifest defines it (numpy only: runtime-safe).

``live_score = 1 / (1 + exp(-(a * live_logit + b)))``; the mapping and its fit live here so
the Detector, packaging, ``edgefas calibrate`` and the export gates all share them.
"""
from __future__ import annotations

import numpy as np


def apply_platt(logits: np.ndarray, a: float, b: float) -> np.ndarray:
    """Calibrated live probabilities of ``logits`` (float64; the argument is clipped to +-60 so
    ``exp`` cannot overflow)."""
    z = np.clip(a * np.asarray(logits, np.float64) + b, -60, 60)
    return 1 / (1 + np.exp(-z))


def platt_logit(score: float, a: float, b: float) -> float:
    """The live logit whose calibrated score is ``score`` (0 < score < 1): the inverse mapping,
    used to place a score threshold on the network's raw output."""
    return float((np.log(score / (1 - score)) - b) / a)


def fit_platt(logits: np.ndarray, is_live: np.ndarray, iters: int = 100
                       ) -> tuple[float, float]:
    """Fit ``live_score = sigmoid(a * logit + b)``: Platt (1999) with his smoothed targets
    ((n+ + 1)/(n+ + 2) and 1/(n- + 2)), classes weighted equally (the score does not lean on a
    data set's class ratio; a deployment's prior is unknown), damped Newton steps.

    Devel sets and a camera's few hundred captures are often (nearly) perfectly separated;
    plain maximum likelihood then has no finite optimum: the slope grows until every score is
    exactly 0 or 1 and ties decide thresholds. The smoothed targets keep it finite.
    """
    x = np.asarray(logits, np.float64)
    live = np.asarray(is_live, bool)
    n_pos, n_neg = int(live.sum()), int((~live).sum())
    t = np.where(live, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    w = np.where(live, 0.5 / max(n_pos, 1), 0.5 / max(n_neg, 1))

    def loss(a: float, b: float) -> float:
        z = a * x + b  # log(1 + e^z) - t z, written to stay finite for any z
        return float((w * (np.logaddexp(0, z) - t * z)).sum())

    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(a * x + b, -60, 60)))
        g = np.array([(w * (p - t) * x).sum(), (w * (p - t)).sum()])
        s = w * p * (1 - p)
        h = np.array([[(s * x * x).sum(), (s * x).sum()], [(s * x).sum(), s.sum()]])
        step = np.linalg.solve(h + 1e-9 * np.eye(2), g)
        f0, lr = loss(a, b), 1.0
        while lr > 1e-6 and loss(a - lr * step[0], b - lr * step[1]) > f0:
            lr /= 2
        a, b = a - lr * step[0], b - lr * step[1]
        if np.abs(lr * step).max() < 1e-10:
            break
    return float(a), float(b)
