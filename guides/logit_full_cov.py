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

import pyro.distributions as dist
from vmoer_ppl.guides.amortised import AmortisedLogitGuide

from vmoer_ppl.nn.amortised import fill_tril


class FullCovLogitGuide(AmortisedLogitGuide):
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

    def head_widths(self, site) -> tuple[int, int]:
        """``Δμ`` (E) and the rows of ``L`` (E(E+1)/2)."""
        return site.num_experts, site.num_experts * (site.num_experts + 1) // 2

    def logits_dist(self, site, u, l_det) -> dist.Distribution:
        """``q`` over logits, batch `(B, T)`, event `(E,)`."""
        delta, raw, s = self.head(site, u, l_det)  # (B, T, E), (B, T, E(E+1)/2)
        L = s * fill_tril(raw, site.num_experts)  # (B, T, E, E)
        return dist.MultivariateNormal(l_det + s * delta, scale_tril=L)
