"""Mean-field Gaussian guide over router weights (weight-space family).

Variational family, per Bayesian router ℓ::

    q(W_ℓ) = N(M_ℓ, diag S_ℓ²),   M_ℓ initialised at the pretrained W_r

Not amortised: the weights are global latents.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import nn
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.models.weight_router import WeightRouterModel


class MeanFieldWeightGuide(RouterGuide):
    """``q(W) = N(M, diag S²)`` per Bayesian router.

    Parameters
    ----------
    model : WeightRouterModel
        The model to mirror.
    init_scale : float
        S at initialisation.
    """

    family = "weight"
    model_cls = WeightRouterModel
    default_prior_scale = 0.02
    amortised = False

    def __init__(self, model: WeightRouterModel, *, init_scale: float = 1e-3) -> None:
        super().__init__(model)
        self.loc = nn.ParameterList(
            nn.Parameter(s.weight.detach().to(s.dtype).clone()) for s in model.sites
        )
        self.log_scale = nn.ParameterList(
            nn.Parameter(torch.full_like(s.weight.detach(), math.log(init_scale)))
            for s in model.sites
        )

    def weight_dist(self, site) -> dist.Distribution:
        """``q`` over ``W``, event `(E, D)`."""
        i = self.index[site.name]
        return dist.Normal(self.loc[i], self.log_scale[i].exp()).to_event(2)

    def q_dists(self, site, u, l_det):
        """``{"weight": q}``."""
        return {"weight": self.weight_dist(site)}
