"""Temperature router: a latent softmax temperature and stochastic top-K (VMoER selection-space).

Generative story, per Bayesian router ℓ and token t::

    l_det = u_t W_rᵀ                        # frozen pretrained router
    log T_ℓ,t ~ prior(0)                    # default N(0, s_T²); shared or per expert
    g_ℓ,t ~ Gumbel(0, 1)^E                  # selection noise
    experts = top-K(l_det / T + g)          # K without replacement from softmax(l_det / T)
    weights = gate_rule(l_det / T)[experts]
    obs_b ~ Categorical(answer_logits_b)

The Gumbel noise is a sample site of its own, with the guide's ``q(g) = p(g)``, so that every
random choice is named, the guide's draw is replayed into the model, and the ELBO is exact
(its KL term is zero). Gradients reach the temperature through the gate values.

Sample sites (batch dims | event dims), plates::

    {router}.temperature   (B, T) | ()  or (E,) per expert   batch: dim=-2, token: dim=-1
    {router}.gumbel        (B, T) | (E,)                     batch: dim=-2, token: dim=-1
    obs                    (B, 1) | ()                       batch: dim=-2

References
----------
1. VMoER, arXiv:2603.09453 (temperature family); thesis VTSR. PAPER.md §3.3.
2. Kool et al. 2019, Gumbel-top-k sampling without replacement, Eq. 4.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import ExpTransform
from vmoer_ppl.models.base import RouterModel, declare_batch

from vmoer_ppl.nn.gates import gate_weights, selectable_experts
from vmoer_ppl.nn.link import AnalyticRouting, hermite_rule, weighted_gate_logits
from vmoer_ppl.nn.mc import entropy, softmax
from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.nn.selection import gumbel_topk


def log_space(base: dist.Distribution) -> dist.Distribution:
    """Distribution of ``exp(x)`` for ``x ~ base`` (prior and guide share it, so KLs are exact)."""
    return dist.TransformedDistribution(base, [ExpTransform()])


def gumbel_dist(l_det: torch.Tensor) -> dist.Distribution:
    """Standard Gumbel noise, batch `(B, T)`, event `(E,)`."""
    zero = torch.zeros_like(l_det)
    return dist.Gumbel(zero, torch.ones_like(l_det)).to_event(1)


class TemperatureRouterModel(RouterModel):
    """Temperature-space Bayesian router.

    Parameters
    ----------
    *args, **kwargs
        As :class:`~vmoer_ppl.models.base.RouterModel`.
    per_expert : bool
        One temperature per expert (``(E,)`` event) instead of one per token.
    """

    family = "temperature"
    selection_latents = frozenset({"gumbel"})

    def __init__(self, *args, per_expert: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.per_expert = per_expert

    def temperature_dist(self, site, l_det, hyper) -> dist.Distribution:
        """Prior over T: the prior of ``log T`` centred at 0, pushed through exp."""
        loc = torch.zeros_like(l_det if self.per_expert else l_det[..., 0])  # (B,T,E) or (B,T)
        return log_space(declare_batch(self.prior.prior_dist(site, loc, hyper), 2))

    def prior_dists(self, site, u, l_det, hyper) -> dict[str, dist.Distribution]:
        """``{"temperature": ..., "gumbel": Gumbel(0, 1)}``."""
        return {
            "temperature": self.temperature_dist(site, l_det, hyper),
            "gumbel": gumbel_dist(l_det),
        }

    def _scores(self, l_det: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        t = temperature if self.per_expert else temperature.unsqueeze(-1)
        return l_det / t  # (..., B, T, E)

    def route_latents(self, site, u, l_det, values) -> RoutingOutput:
        """Gumbel-top-K on ``l_det / T``, gate rule on ``l_det / T``."""
        scores = self._scores(l_det, values["temperature"])  # (B, T, E)
        n = selectable_experts(site.gate_rule, scores.shape[-1])  # not always-on shared experts
        experts = gumbel_topk(scores[..., :n], site.top_k, values["gumbel"][..., :n])  # (B, T, K)
        return RoutingOutput(scores, gate_weights(scores, experts, site.gate_rule), experts)

    def logit_samples(self, site, u, l_det, values) -> torch.Tensor:
        """Tempered logits ``l_det / T_s``, `(S, B, T, E)`."""
        return self._scores(l_det, values["temperature"])

    def analytic_routing(self, site, u, l_det, q, link, nodes: int = 16) -> AnalyticRouting:
        """``E_q`` over ``log T`` by Gauss–Hermite quadrature: gate logits, ``E[p]``, MI, ILV.

        Selection noise is not part of the predictive (as in ``mode="mc"``), so the integral is
        one-dimensional per token and 16 nodes are exact far below Monte Carlo error; ``link``
        is unused. A per-expert temperature makes it E-dimensional: use ``mode="mc"`` then.
        """
        if self.per_expert:
            raise NotImplementedError(
                "closed-form predictive routing needs a shared temperature (one log T per "
                "token); with per_expert=True use mode='mc'"
            )
        base = q["temperature"].base_dist  # Normal over log T, (B, T)
        if not isinstance(base, dist.Normal):
            raise self._not_gaussian("log temperature", base)
        x, w = hermite_rule(nodes, l_det.dtype)
        x = x.to(l_det.device).reshape(-1, *([1] * base.loc.dim()))
        scores = self._scores(l_det, (base.loc + base.scale * x).exp())  # (n, B, T, E)
        wn = w.to(scores).reshape(-1, *([1] * (scores.dim() - 1)))
        p_n = softmax(scores)
        p_bar = (wn * p_n).sum(0)
        mi = entropy(p_bar) - (wn[..., 0] * entropy(p_n)).sum(0)
        mean = (wn * scores).sum(0)
        ilv = (wn * (scores - mean) ** 2).sum(0).sum(-1)
        gate = weighted_gate_logits(scores, w, site.gate_rule, probs=p_n)
        return AnalyticRouting(gate, p_bar, mi.clamp_min(0), ilv)
