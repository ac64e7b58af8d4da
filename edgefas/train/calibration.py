"""Score calibration: Platt scaling of the live logit, fit on a development split."""
from __future__ import annotations

import numpy as np


def fit_platt(logits: np.ndarray, is_live: np.ndarray, *, balanced: bool = True,
              iters: int = 50) -> tuple[float, float]:
    """Fit ``p = sigmoid(a * logit + b)`` by Newton's method on the log loss.

    ``balanced`` weights bona fide and attacks equally, so the probability does not lean
    on Replay-Attack's 1:5 class ratio (a deployment's prior is unknown). Platt (1999).
    """
    x = np.asarray(logits, np.float64)
    y = np.asarray(is_live, np.float64)
    w = np.ones_like(x)
    if balanced:
        w[y == 1] = 0.5 / max((y == 1).sum(), 1)
        w[y == 0] = 0.5 / max((y == 0).sum(), 1)
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(a * x + b)))
        g = np.array([(w * (p - y) * x).sum(), (w * (p - y)).sum()])
        s = w * p * (1 - p)
        h = np.array([[(s * x * x).sum(), (s * x).sum()], [(s * x).sum(), s.sum()]])
        h += 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


