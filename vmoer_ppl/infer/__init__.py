"""Inference: the reference and fused SVI paths, and MC predictive routing."""

from vmoer_ppl.infer.freeze import check_only_guide_trains, freeze
from vmoer_ppl.infer.fused import fused_loss, kl_term
from vmoer_ppl.infer.kl import kl_full_cov, kl_full_cov_diag, kl_mean_field
from vmoer_ppl.infer.predictive import LayerRouting, PredictiveOutput, PredictMode, predict
from vmoer_ppl.infer.svi import ELBOPath, SVIConfig, SVIResult, fit_svi

__all__ = [
    "ELBOPath",
    "LayerRouting",
    "PredictMode",
    "PredictiveOutput",
    "SVIConfig",
    "SVIResult",
    "check_only_guide_trains",
    "fit_svi",
    "freeze",
    "fused_loss",
    "kl_full_cov",
    "kl_full_cov_diag",
    "kl_mean_field",
    "kl_term",
    "predict",
]
