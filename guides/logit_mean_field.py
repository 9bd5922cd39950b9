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

import pyro.distributions as dist
from vmoer_ppl.guides.amortised import AmortisedLogitGuide


class MeanFieldLogitGuide(AmortisedLogitGuide):
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

    def head_widths(self, site) -> tuple[int, int]:
        """``Δμ`` and ``log σ``: E each."""
        return site.num_experts, site.num_experts

    def logits_dist(self, site, u, l_det) -> dist.Distribution:
        """``q`` over logits, batch `(B, T)`, event `(E,)`."""
        delta, raw, s = self.head(site, u, l_det)  # (B, T, E) twice
        return dist.Normal(l_det + s * delta, s * raw.exp()).to_event(1)
