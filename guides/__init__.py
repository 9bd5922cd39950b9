"""Amortised guides mirroring each router model; each concrete guide registers its family.

The import order below is the registry's order (:data:`vmoer_ppl.families.FAMILIES`).
"""

# ruff: noqa: I001
from vmoer_ppl.guides.base import HyperGuide, RouterGuide, point_value
from vmoer_ppl.guides.amortised import AmortisedGuide, AmortisedLogitGuide
from vmoer_ppl.guides.logit_mean_field import MeanFieldLogitGuide
from vmoer_ppl.guides.logit_full_cov import FullCovLogitGuide
from vmoer_ppl.guides.logit_low_rank import LowRankLogitGuide
from vmoer_ppl.guides.temperature import ExpertTemperatureGuide, TemperatureGuide
from vmoer_ppl.guides.weight_mean_field import MeanFieldWeightGuide

__all__ = [
    "AmortisedGuide",
    "AmortisedLogitGuide",
    "ExpertTemperatureGuide",
    "FullCovLogitGuide",
    "HyperGuide",
    "LowRankLogitGuide",
    "MeanFieldLogitGuide",
    "MeanFieldWeightGuide",
    "RouterGuide",
    "TemperatureGuide",
    "point_value",
]
