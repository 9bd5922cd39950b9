"""Amortised log-normal guide over router temperatures (VMoER temperature family).

Variational family, per Bayesian router ℓ and token t::

    q(T_ℓ,t | u_t) = LogNormal(m_φ(u_t), v_φ(u_t))     # shared: scalar; per expert: (E,)
    q(g_ℓ,t) = Gumbel(0, 1)^E                           # the prior: selection noise is not inferred

At initialisation ``m = 0`` (T = 1, the original router) and ``v ≈ init_scale``.

References
----------
1. VMoER, arXiv:2603.09453; thesis VTSR (PAPER.md §3.3).
"""

from __future__ import annotations

import pyro.distributions as dist
from vmoer_ppl.guides.amortised import AmortisedGuide
from vmoer_ppl.models.temperature_router import TemperatureRouterModel, gumbel_dist, log_space


class TemperatureGuide(AmortisedGuide):
    """``q(T | u) = LogNormal(m(u), v(u))`` and ``q(g) = Gumbel(0, 1)``.

    Parameters
    ----------
    model : TemperatureRouterModel
        The model to mirror (shared or per-expert temperatures).
    trunk_dim : int, optional
        Trunk width H (default D/4).
    init_scale : float or mapping of str to float
        The unit ``s_ℓ`` of the log-space mean and std (one, or one per router name): the prior
        scale of ``log T``.
    """

    family = "temperature"
    model_cls = TemperatureRouterModel
    model_kwargs = {"per_expert": False}
    default_prior_scale = 0.5

    def head_widths(self, site) -> tuple[int, int]:
        """Mean and log std of ``log T``: E each per expert, else 1."""
        m = site.num_experts if self.model.per_expert else 1
        return m, m

    def temperature_dist(self, site, u, l_det) -> dist.Distribution:
        """``q`` over T, batch `(B, T)`, event `()` or `(E,)`."""
        loc, raw, s = self.head(site, u, l_det)  # (B, T, m) twice
        loc, scale = s * loc, s * raw.exp()
        if self.model.per_expert:
            return log_space(dist.Normal(loc, scale).to_event(1))  # event (E,)
        return log_space(dist.Normal(loc[..., 0], scale[..., 0]))  # event ()

    def q_dists(self, site, u, l_det):
        """``{"temperature": q, "gumbel": Gumbel(0, 1)}``."""
        return {"temperature": self.temperature_dist(site, u, l_det), "gumbel": gumbel_dist(l_det)}


class ExpertTemperatureGuide(TemperatureGuide):
    """:class:`TemperatureGuide` with one temperature per token and expert."""

    family = "temperature-expert"
    model_kwargs = {"per_expert": True}
