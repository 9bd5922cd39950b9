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

import math

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import ExpTransform
from vmoer_ppl.models.base import RouterModel, declare_batch

from vmoer_ppl.nn.gates import gate_weights, selectable_experts
from vmoer_ppl.nn.link import (
    AnalyticRouting,
    hermite_rule,
    is_softmax_average,
    quadrature_nodes,
    weighted_gate_logits,
)
from vmoer_ppl.nn.mc import entropy
from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.nn.selection import gumbel_topk

#: ``|log T|`` kept within this in routing arithmetic (T in [e^-40, e^40]): ``l / T`` and
#: ``(1 / T)²`` stay finite in float32, where a wide posterior's outer quadrature nodes or draws
#: would overflow (log T = −92 at σ = 6 made ``0 · inf`` a NaN in a demo's validation); beyond
#: the bound ``softmax(l / T)`` is already one-hot or uniform, so nothing else changes.
LOG_T_BOUND = 40.0


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
        t = t.clamp(math.exp(-LOG_T_BOUND), math.exp(LOG_T_BOUND))  # identity in any real fit
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

    def analytic_routing(
        self, site, u, l_det, q, link, nodes: int | None = None
    ) -> AnalyticRouting:
        """``E_q`` over ``log T`` by Gauss–Hermite quadrature: gate logits, ``E[p]``, MI, ILV.

        Selection noise is not part of the predictive (as in ``mode="mc"``), so the integral is
        one-dimensional per token; ``nodes`` (default: from the widest posterior,
        :func:`~vmoer_ppl.nn.link.quadrature_nodes`) keeps it far below Monte Carlo error;
        ``link`` is unused. A per-expert temperature makes it E-dimensional: use ``mode="mc"``.
        """
        if self.per_expert:
            raise NotImplementedError(
                "closed-form predictive routing needs a shared temperature (one log T per "
                "token); with per_expert=True use mode='mc'"
            )
        base = q["temperature"].base_dist  # Normal over log T, (B, T)
        if not isinstance(base, dist.Normal):
            raise self._not_gaussian("log temperature", base)
        x, w = hermite_rule(nodes or quadrature_nodes(base.scale), l_det.dtype)
        x, w = (v.to(l_det.device).reshape(-1, *([1] * base.loc.dim())) for v in (x, w))
        wn = w.unsqueeze(-1)  # (n, 1, …, 1): the weights against (n, B, T, ·)
        log_t = (base.loc + base.scale * x).clamp(-LOG_T_BOUND, LOG_T_BOUND)  # (n, B, T)
        inv_t = (-log_t).exp().unsqueeze(-1)  # (n, B, T, 1) 1 / T_n
        # T > 0: max_e (l_e / T) = (max_e l_e) / T, so one shift serves every node
        shifted = (l_det - l_det.amax(-1, keepdim=True)) * inv_t  # (n, B, T, E) log p + log Z
        e = shifted.exp()
        z = e.sum(-1, keepdim=True)  # (n, B, T, 1)
        p_n = e / z
        p_bar = (wn * p_n).sum(0)  # (B, T, E)
        h_n = z.squeeze(-1).log() - (p_n * shifted).sum(-1)  # (n, B, T) H[p_n]
        mi = entropy(p_bar) - (w * h_n).sum(0)
        # l_e / T_n is linear in 1 / T_n: its node-weighted variance is l_e² Var_w[1 / T]
        m1, m2 = (wn * inv_t).sum(0), (wn * inv_t**2).sum(0)
        ilv = (m2 - m1**2).clamp_min(0).squeeze(-1) * (l_det**2).sum(-1)  # (B, T)
        if is_softmax_average(site.gate_rule):
            gate = p_bar.clamp_min(torch.finfo(p_bar.dtype).tiny).log()
        else:  # sigmoid rules and score rules average their own scores
            gate = weighted_gate_logits(l_det * inv_t, w.flatten(), site.gate_rule, probs=p_n)
        return AnalyticRouting(gate, p_bar, mi.clamp_min(0), ilv)
