"""Low-rank-plus-diagonal amortised guide over routing logits: a slimmer full covariance.

Variational family, per Bayesian router ℓ and token t::

    q(logits_ℓ,t | u_t) = N(l_det + s Δμ_φ(u_t), s² (diag d_φ(u_t) + V_φ(u_t) V_φ(u_t)ᵀ))

with ``d = exp(2 ρ)`` (E outputs) and ``V`` of shape `(E, r)` (E·r outputs): the scale head has
``E (r + 1)`` outputs instead of the full-covariance guide's ``E (E + 1) / 2``, so the head's
cost grows linearly in E. It keeps correlations between experts along r directions (r = E - 1
spans everything the softmax sees). At initialisation ``d ≈ 1`` and ``V ≈ 0``: q is the prior.
Sampling, the KL (:mod:`vmoer_ppl.infer.kl`) and log-densities go through the Woodbury identity
in ``LowRankMultivariateNormal``; the analytic predictive uses its covariance matrix.

References
----------
1. VMoER, arXiv:2603.09453, §3.2 (FCVR), whose covariance this restricts to rank r.
2. Ong, Nott & Smith 2018, Gaussian variational approximation with a factor covariance structure.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyro.distributions as dist
from torch import nn
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.models.logit_router import LogitRouterModel

from vmoer_ppl.nn.amortised import AmortisedHeads

#: Default rank r of the covariance factor.
DEFAULT_RANK = 4


class LowRankLogitGuide(RouterGuide):
    """``q(logits | u) = N(l_det + sΔμ(u), s²(diag d(u) + V(u)V(u)ᵀ))``.

    Parameters
    ----------
    model : LogitRouterModel
        The model to mirror.
    trunk_dim : int, optional
        Trunk width H (default D/4).
    init_scale : float or mapping of str to float
        The unit ``s_ℓ`` of ``Δμ``, ``√d`` and ``V`` (one, or one per router): the prior scale.
    rank : int
        r, columns of V (capped at E - 1).
    """

    family = "logit-lowrank"
    model_cls = LogitRouterModel

    def __init__(
        self,
        model: LogitRouterModel,
        *,
        trunk_dim: int | None = None,
        init_scale: float | Mapping[str, float] = 1.0,
        rank: int = DEFAULT_RANK,
    ) -> None:
        super().__init__(model)
        self.set_scales(init_scale)
        self.ranks = [max(1, min(rank, s.num_experts - 1)) for s in model.sites]
        self.nets = nn.ModuleList(
            AmortisedHeads(
                s.hidden_size, s.num_experts, s.num_experts * (r + 1), trunk_dim=trunk_dim
            )
            for s, r in zip(model.sites, self.ranks, strict=True)
        )

    def logits_dist(self, site, u, l_det) -> dist.Distribution:
        """``q`` over logits, batch `(B, T)`, event `(E,)`."""
        i, E = self.index[site.name], site.num_experts
        delta, raw = self.nets[i](u.to(l_det.dtype))  # (B, T, E), (B, T, E(r+1))
        s = self.scale_at(site)
        rho, factor = raw[..., :E], raw[..., E:].unflatten(-1, (E, self.ranks[i]))
        return dist.LowRankMultivariateNormal(
            l_det + s * delta, cov_factor=s * factor, cov_diag=(s * rho.exp()) ** 2
        )

    def q_dists(self, site, u, l_det):
        """``{"logits": q}``."""
        return {"logits": self.logits_dist(site, u, l_det)}
