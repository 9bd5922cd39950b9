"""Pyro models of Bayesian MoE routers, one family per module."""

from vmoer_ppl.models.base import RouterModel, sample_latents
from vmoer_ppl.models.dims import RouteContext, make_context
from vmoer_ppl.models.likelihoods import CategoricalLikelihood, Likelihood
from vmoer_ppl.models.logit_router import LogitRouterModel
from vmoer_ppl.models.temperature_router import TemperatureRouterModel
from vmoer_ppl.models.weight_router import WeightRouterModel

__all__ = [
    "CategoricalLikelihood",
    "Likelihood",
    "LogitRouterModel",
    "RouteContext",
    "RouterModel",
    "TemperatureRouterModel",
    "WeightRouterModel",
    "make_context",
    "sample_latents",
]
