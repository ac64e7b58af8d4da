"""ISO/IEC 30107-3 presentation attack detection metrics.

Scores are LIVE scores (higher = bona fide); a presentation is accepted as bona
fide when ``score >= threshold``. See :mod:`edgefas.metrics.iso30107` for the
exact definitions. ``plot_det`` imports matplotlib only when called.
"""

from edgefas.metrics.bootstrap import bootstrap_ci, percentile_ci, resample_weights
from edgefas.metrics.det_plot import plot_det
from edgefas.metrics.iso30107 import (
    EerResult,
    OperatingPoint,
    Rate,
    acer,
    apcer,
    apcer_at_bpcer,
    apcer_max,
    auc,
    bpcer,
    bpcer_at_apcer,
    bpcer_by_source,
    eer,
    error_curves,
    hter,
    threshold_at_apcer,
    threshold_at_bpcer,
    threshold_at_eer,
)
from edgefas.metrics.report import Estimate, PadReport, evaluate

__all__ = [
    "EerResult", "Estimate", "OperatingPoint", "PadReport", "Rate",
    "acer", "apcer", "apcer_at_bpcer", "apcer_max", "auc", "bootstrap_ci", "bpcer",
    "bpcer_at_apcer", "bpcer_by_source", "eer", "error_curves", "evaluate", "hter",
    "percentile_ci",
    "plot_det", "resample_weights", "threshold_at_apcer", "threshold_at_bpcer",
    "threshold_at_eer",
]
