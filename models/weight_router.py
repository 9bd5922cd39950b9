"""Weight router: a Gaussian latent over the router weight matrix (weight-space baseline).

Generative story, per Bayesian router ℓ::

    W_ℓ ~ prior(W_r)                        # default N(W_r, σ_w² I), W_r pretrained
    logits_ℓ,t = u_t W_ℓᵀ                   # for every token
    experts, weights = gate_rule(top-K(logits_ℓ,t))
    obs_b ~ Categorical(answer_logits_b)

Sample sites (batch dims | event dims), plates::

    {router}.weight        ()     | (E, D)  global (scale β / num_data)
    obs                    (B, 1) | ()      batch: dim=-2

The site name is the router's ``state_dict`` key (STYLE rule 7).

References
----------
1. Thesis arXiv:2509.23830, weight-space routers (MCDR/SWAGR/DER); PAPER.md §3.1.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn
from vmoer_ppl.models.base import RouterModel, declare_batch, is_gaussian

from vmoer_ppl.nn.gates import route
from vmoer_ppl.nn.outputs import RoutingOutput


class WeightRouterModel(RouterModel):
    """Weight-space Bayesian router; one global latent ``{router}.weight`` per layer."""

    family = "weight"
    global_latents = frozenset({"weight"})

    def weight_dist(self, site, hyper) -> dist.Distribution:
        """Prior over ``W`` centred on the pretrained weight, event `(E, D)`."""
        loc = site.weight.detach().to(site.dtype)  # (E, D)
        return declare_batch(self.prior.prior_dist(site, loc, hyper), 0)

    def prior_dists(self, site, u, l_det, hyper) -> dict[str, dist.Distribution]:
        """``{"weight": prior(W_r)}``."""
        return {"weight": self.weight_dist(site, hyper)}

    def route_latents(self, site, u, l_det, values) -> RoutingOutput:
        """Top-K of ``u Wᵀ`` with the sampled ``W``, then the gate rule."""
        logits = nn.functional.linear(u, values["weight"].to(u.dtype))  # (B, T, E)
        return route(logits, site.top_k, site.gate_rule)

    def logit_samples(self, site, u, l_det, values) -> torch.Tensor:
        """``u W_sᵀ`` for each weight sample, `(S, B, T, E)`."""
        return torch.einsum("btd,sed->sbte", u, values["weight"].to(u.dtype))

    def logit_moments(self, site, u, l_det, q):
        """Logits ``u Wᵀ`` under a mean-field Gaussian ``W``: mean and variances `(B, T, E)`."""
        d = q["weight"]
        if not is_gaussian(d) or isinstance(d, dist.MultivariateNormal):
            raise self._not_gaussian("weight", d)
        mean, var = d.mean.to(u.dtype), d.variance.to(u.dtype)  # (E, D) each
        return nn.functional.linear(u, mean), nn.functional.linear(u * u, var)
