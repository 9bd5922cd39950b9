"""The router families: names, and the (model, guide, default prior) each name builds.

Dispatch goes through a registry (STYLE rule 16), not an if-chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.guides.logit_full_cov import FullCovLogitGuide
from vmoer_ppl.guides.logit_low_rank import LowRankLogitGuide
from vmoer_ppl.guides.logit_mean_field import MeanFieldLogitGuide
from vmoer_ppl.guides.temperature import TemperatureGuide
from vmoer_ppl.guides.weight_mean_field import MeanFieldWeightGuide
from vmoer_ppl.models.base import RouterModel
from vmoer_ppl.models.logit_router import LogitRouterModel
from vmoer_ppl.models.temperature_router import TemperatureRouterModel
from vmoer_ppl.models.weight_router import WeightRouterModel
from vmoer_ppl.priors.base import Prior
from vmoer_ppl.priors.gaussian import GaussianPrior


class RouterFamily(str, Enum):
    """Bayesian router families."""

    LOGIT_MF = "logit-mf"
    """Gaussian logits, mean-field amortised guide (VMoER-MF, thesis MFVR)."""
    LOGIT_FC = "logit-fc"
    """Gaussian logits, full-covariance amortised guide (VMoER-FC, thesis FCVR)."""
    LOGIT_LOWRANK = "logit-lowrank"
    """Gaussian logits, low-rank-plus-diagonal covariance (rank 4): E(r + 1) scale outputs."""
    TEMPERATURE = "temperature"
    """One latent temperature per token, Gumbel-top-K selection (VMoER temperature, VTSR)."""
    TEMPERATURE_EXPERT = "temperature-expert"
    """One latent temperature per token and expert."""
    WEIGHT = "weight"
    """Gaussian router weights, mean-field guide (weight-space baseline)."""


@dataclass(frozen=True)
class FamilySpec:
    """How to build one family."""

    model_cls: type[RouterModel]
    guide_cls: type[RouterGuide]
    default_prior: Callable[[], Prior]  # prior when the user gives none
    model_kwargs: dict = field(default_factory=dict)


FAMILIES: dict[RouterFamily, FamilySpec] = {
    RouterFamily.LOGIT_MF: FamilySpec(
        LogitRouterModel, MeanFieldLogitGuide, lambda: GaussianPrior(1.0)
    ),
    RouterFamily.LOGIT_FC: FamilySpec(
        LogitRouterModel, FullCovLogitGuide, lambda: GaussianPrior(1.0)
    ),
    RouterFamily.LOGIT_LOWRANK: FamilySpec(
        LogitRouterModel, LowRankLogitGuide, lambda: GaussianPrior(1.0)
    ),
    RouterFamily.TEMPERATURE: FamilySpec(
        TemperatureRouterModel, TemperatureGuide, lambda: GaussianPrior(0.5), {"per_expert": False}
    ),
    RouterFamily.TEMPERATURE_EXPERT: FamilySpec(
        TemperatureRouterModel, TemperatureGuide, lambda: GaussianPrior(0.5), {"per_expert": True}
    ),
    RouterFamily.WEIGHT: FamilySpec(
        WeightRouterModel, MeanFieldWeightGuide, lambda: GaussianPrior(0.02)
    ),
}


def as_family(family: RouterFamily | str) -> RouterFamily:
    """Parse a family name, with an error that lists the known ones.

    Parameters
    ----------
    family : RouterFamily or str
        E.g. ``"logit-fc"``.

    Returns
    -------
    RouterFamily
    """
    try:
        return RouterFamily(family)
    except ValueError:
        known = ", ".join(repr(f.value) for f in RouterFamily)
        raise ValueError(f"unknown router family {family!r}; known families: {known}") from None
