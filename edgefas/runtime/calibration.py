"""Platt score calibration as the bundle manifest defines it (numpy only: runtime-safe).

``live_score = 1 / (1 + exp(-(a * live_logit + b)))``; the fit lives in
``edgefas.train.calibration`` (training code), the mapping here so the Detector, packaging and
export gates all apply the very same formula.
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
