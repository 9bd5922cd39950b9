"""Evaluation metrics."""

from vmoer_ppl.evaluation.metrics import accuracy, auroc, calibration_errors, nll

__all__ = ["accuracy", "auroc", "calibration_errors", "nll"]
