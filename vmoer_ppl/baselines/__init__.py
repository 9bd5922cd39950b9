"""Baseline routers with the Bayesian routers' interface (``(model, guide)`` for ``predict``)."""

from vmoer_ppl.baselines.base import BaselineGuide, SampledLogits
from vmoer_ppl.baselines.build import BASELINES, make_baseline
from vmoer_ppl.baselines.finetuned import EnsembleGuide, SWAGGuide, finetune_routers
from vmoer_ppl.baselines.simple import MCDropoutGuide, TemperatureSamplingGuide

__all__ = [
    "BASELINES",
    "BaselineGuide",
    "EnsembleGuide",
    "MCDropoutGuide",
    "SWAGGuide",
    "SampledLogits",
    "TemperatureSamplingGuide",
    "finetune_routers",
    "make_baseline",
]
