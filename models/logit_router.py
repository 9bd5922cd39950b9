"""Logit router: a Gaussian latent over each token's routing logits (VMoER logit-space).

Generative story, per Bayesian router ℓ and token t::

    l_det = u_t W_rᵀ                       # frozen pretrained router
    logits_ℓ,t ~ prior(l_det)               # default N(l_det, s² I), s = 1
    experts, weights = gate_rule(top-K(logits_ℓ,t))
    obs_b ~ Categorical(answer_logits_b)   # after the frozen network runs

Sample sites (batch dims | event dims), plates::

    {router}.logits        (B, T) | (E,)    batch: dim=-2, token: dim=-1 (masked, β / N_tokens)
    {router}.prior_scale   ()     | ()      hierarchical prior only (β / num_data)
    obs                    (B, 1) | ()      batch: dim=-2 (scale 1 / B)

References
----------
1. VMoER, arXiv:2603.09453, §3.1; thesis arXiv:2509.23830 (MFVR/FCVR). PAPER.md §3.2.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyro.distributions as dist
import torch
from vmoer_ppl.models.base import RouterModel, declare_batch, is_gaussian

from vmoer_ppl.nn.gates import route
from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.sites import RouterSite


class LogitRouterModel(RouterModel):
    """Logit-space Bayesian router; latent ``{router}.logits`` per token.

    Examples
    --------
    >>> from vmoer_ppl import bayesianize
    >>> from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig
    >>> model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="logit-mf")
    >>> sorted(model.site_names())
    ['layers.0.moe.router.logits', 'layers.1.moe.router.logits']
    """

    family = "logit"
    logit_scale_prior = True

    def logits_dist(self, site: RouterSite, l_det: torch.Tensor, hyper: Mapping):
        """Prior over logits, batch `(B, T)`, event `(E,)`."""
        return declare_batch(self.prior.prior_dist(site, l_det, hyper), 2)

    def prior_dists(self, site, u, l_det, hyper) -> dict[str, dist.Distribution]:
        """``{"logits": prior(l_det)}``."""
        return {"logits": self.logits_dist(site, l_det, hyper)}

    def route_latents(self, site, u, l_det, values) -> RoutingOutput:
        """Top-K of the sampled logits, then the architecture's gate rule."""
        return route(values["logits"], site.top_k, site.gate_rule)

    def logit_samples(self, site, u, l_det, values) -> torch.Tensor:
        """The logit samples themselves, `(S, B, T, E)`."""
        return values["logits"]

    def logit_variance(self, q, samples, l_det) -> torch.Tensor:
        """``tr Σ`` in closed form from ``q(logits)``, `(B, T)`."""
        return q["logits"].variance.sum(-1)

    def logit_moments(self, site, u, l_det, q):
        """Mean `(B, T, E)` and variances `(B, T, E)` or covariance `(B, T, E, E)` of q(logits)."""
        d = q["logits"]
        if not is_gaussian(d):
            raise self._not_gaussian("logits", d)
        if isinstance(d, dist.MultivariateNormal | dist.LowRankMultivariateNormal):
            return d.loc, d.covariance_matrix
        return d.mean, d.variance
