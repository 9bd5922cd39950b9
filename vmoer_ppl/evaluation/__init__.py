"""Evaluation metrics: accuracy, NLL, calibration, OOD detection, selection, stability."""

from vmoer_ppl.evaluation.bootstrap import bootstrap_ci, paired_bootstrap
from vmoer_ppl.evaluation.calibration import adaptive_ece, brier, reliability_data
from vmoer_ppl.evaluation.detection import auprc, aurc, fpr_at_tpr, ood_scored, risk_coverage
from vmoer_ppl.evaluation.metrics import accuracy, auroc, calibration_errors, nll
from vmoer_ppl.evaluation.stability import jaccard, routing_stability

__all__ = [
    "accuracy",
    "adaptive_ece",
    "auprc",
    "aurc",
    "auroc",
    "bootstrap_ci",
    "brier",
    "calibration_errors",
    "fpr_at_tpr",
    "jaccard",
    "nll",
    "ood_scored",
    "paired_bootstrap",
    "reliability_data",
    "risk_coverage",
    "routing_stability",
]
