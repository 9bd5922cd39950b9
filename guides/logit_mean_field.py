"""Mean-field amortised guide over routing logits (VMoER-MF / thesis MFVR).

Variational family, per Bayesian router ℓ and token t::

    q(logits_ℓ,t | u_t) = N(l_det + s_ℓ Δμ_φ(u_t), diag (s_ℓ σ_φ(u_t))²)

``Δμ`` and ``log σ`` come from the shared-trunk :class:`~vmoer_ppl.nn.amortised.AmortisedHeads`,
both in units of the prior scale ``s_ℓ``; at initialisation ``Δμ = 0`` and ``σ ≈ 1``, i.e. q
starts at the prior.

References
----------
1. VMoER, arXiv:2603.09453, §3.2; PAPER.md §3.2 (MFVR).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyro.distributions as dist
from torch import nn
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.models.logit_router import LogitRouterModel

from vmoer_ppl.nn.amortised import AmortisedHeads


class MeanFieldLogitGuide(RouterGuide):
    """``q(logits | u) = N(l_det + Δμ(u), diag σ(u)²)``.

    Parameters
    ----------
    model : LogitRouterModel
        The model to mirror.
    trunk_dim : int, optional
        Trunk width H (default D/4).
    init_scale : float or mapping of str to float
        The unit ``s_ℓ`` of ``Δμ`` and σ (one, or one per router name): the prior scale.
    """

    family = "logit-mf"
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
            AmortisedHeads(s.hidden_size, s.num_experts, s.num_experts, trunk_dim=trunk_dim)
            for s in model.sites
        )

    def logits_dist(self, site, u, l_det) -> dist.Distribution:
        """``q`` over logits, batch `(B, T)`, event `(E,)`."""
        delta, raw = self.nets[self.index[site.name]](u.to(l_det.dtype))  # (B, T, E) twice
        s = self.scale_at(site)
        return dist.Normal(l_det + s * delta, s * raw.exp()).to_event(1)

    def q_dists(self, site, u, l_det):
        """``{"logits": q}``."""
        return {"logits": self.logits_dist(site, u, l_det)}
