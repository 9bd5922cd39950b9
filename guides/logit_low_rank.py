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
from vmoer_ppl.guides.amortised import AmortisedLogitGuide
from vmoer_ppl.models.logit_router import LogitRouterModel

#: Default rank r of the covariance factor.
DEFAULT_RANK = 4


class LowRankLogitGuide(AmortisedLogitGuide):
    """``q(logits | u) = N(l_det + sΔμ(u), s²(diag d(u) + V(u)V(u)ᵀ))``.

    Parameters
    ----------
    model : LogitRouterModel
        The model to mirror.
    trunk_dim : int, optional
        Trunk width H (default D/16: the head's E(r + 1) outputs need fewer trunk features
        than the full-covariance head's E(E + 1)/2; README "Benchmarks" for the FLOPs and
        the quality measured against the full-covariance head).
    init_scale : float or mapping of str to float
        The unit ``s_ℓ`` of ``Δμ``, ``√d`` and ``V`` (one, or one per router): the prior scale.
    rank : int
        r, columns of V (capped at E - 1).
    """

    family = "logit-lowrank"
    trunk_divisor = 16

    def __init__(
        self,
        model: LogitRouterModel,
        *,
        trunk_dim: int | None = None,
        init_scale: float | Mapping[str, float] | None = None,
        rank: int = DEFAULT_RANK,
    ) -> None:
        # before the heads are built: their widths need r (a plain dict, not a module state)
        self.ranks = {s.name: max(1, min(rank, s.num_experts - 1)) for s in model.sites}
        super().__init__(model, trunk_dim=trunk_dim, init_scale=init_scale)

    def head_widths(self, site) -> tuple[int, int]:
        """``Δμ`` (E), then ``ρ`` (E) and ``V`` (E·r)."""
        return site.num_experts, site.num_experts * (self.ranks[site.name] + 1)

    def logits_dist(self, site, u, l_det) -> dist.Distribution:
        """``q`` over logits, batch `(B, T)`, event `(E,)`."""
        E = site.num_experts
        delta, raw, s = self.head(site, u, l_det)  # (B, T, E), (B, T, E(r+1))
        rho, factor = raw[..., :E], raw[..., E:].unflatten(-1, (E, self.ranks[site.name]))
        return dist.LowRankMultivariateNormal(
            l_det + s * delta, cov_factor=s * factor, cov_diag=(s * rho.exp()) ** 2
        )
