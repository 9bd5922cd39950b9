"""Full-covariance amortised guide over routing logits (VMoER-FC / thesis FCVR).

Variational family, per Bayesian router ℓ and token t::

    q(logits_ℓ,t | u_t) = N(l_det + Δμ_φ(u_t), L_φ(u_t) L_φ(u_t)ᵀ)

``L`` is lower-triangular, filled row-major from the scale head's E(E+1)/2 outputs, with its
diagonal through ``exp``; at initialisation ``L ≈ init_scale · I``.

References
----------
1. VMoER, arXiv:2603.09453, §3.2, Fig. 5 / App. C.2; PAPER.md §3.2 (FCVR).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyro.distributions as dist
from torch import nn
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.models.logit_router import LogitRouterModel

from vmoer_ppl.nn.amortised import AmortisedHeads, fill_tril


class FullCovLogitGuide(RouterGuide):
    """``q(logits | u) = N(l_det + Δμ(u), L(u) L(u)ᵀ)``.

    Parameters
    ----------
    model : LogitRouterModel
        The model to mirror.
    trunk_dim : int, optional
        Trunk width H (default D/4).
    init_scale : float or mapping of str to float
        The unit ``s_ℓ`` of ``Δμ`` and ``L`` (one, or one per router name): the prior scale.
    """

    family = "logit-fc"
    model_cls = LogitRouterModel

    def __init__(
        self,
        model: LogitRouterModel,
        *,
        trunk_dim: int | None = None,
        init_scale: float | Mapping[str, float] = 1.0,
    ) -> None:
        super().__init__(model)
        self.set_scales(init_scale)
        self.nets = nn.ModuleList(
            AmortisedHeads(
                s.hidden_size,
                s.num_experts,
                s.num_experts * (s.num_experts + 1) // 2,
                trunk_dim=trunk_dim,
            )
            for s in model.sites
        )

    def logits_dist(self, site, u, l_det) -> dist.Distribution:
        """``q`` over logits, batch `(B, T)`, event `(E,)`."""
        delta, raw = self.nets[self.index[site.name]](u.to(l_det.dtype))  # (B,T,E), (B,T,E(E+1)/2)
        s = self.scale_at(site)
        L = s * fill_tril(raw, site.num_experts)  # (B, T, E, E)
        return dist.MultivariateNormal(l_det + s * delta, scale_tril=L)

    def q_dists(self, site, u, l_det):
        """``{"logits": q}``."""
        return {"logits": self.logits_dist(site, u, l_det)}
