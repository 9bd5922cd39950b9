"""Pluggable priors over router latents."""

from vmoer_ppl.priors.base import PRIOR_TYPES, Prior, check_scale, prior_from_config
from vmoer_ppl.priors.gaussian import GaussianPrior
from vmoer_ppl.priors.hierarchical import HierarchicalGaussianPrior
from vmoer_ppl.priors.relative import logit_spread, relative_prior
from vmoer_ppl.priors.shorthands import CallablePrior, PerSitePrior, as_prior, gaussian_scale

__all__ = [
    "PRIOR_TYPES",
    "CallablePrior",
    "GaussianPrior",
    "HierarchicalGaussianPrior",
    "PerSitePrior",
    "Prior",
    "as_prior",
    "check_scale",
    "gaussian_scale",
    "logit_spread",
    "prior_from_config",
    "relative_prior",
]
