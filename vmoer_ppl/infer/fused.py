"""The fused ELBO: one network pass where each Bayesian router samples ``q`` and adds its KL.

Same estimator as ``TraceMeanField_ELBO`` on the (model, guide) pair, with the same random draws
in the same order, but the network runs once instead of twice and no Pyro trace is kept for the
router latents. ``tests/infer/test_fused.py`` checks equal loss and gradients at a fixed seed.
"""

from __future__ import annotations

import dataclasses

import pyro.distributions as dist
import torch
from pyro import poutine
from torch.distributions import kl_divergence

from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.infer import kl as _kl  # noqa: F401  (registers the MVN-Independent KL)
from vmoer_ppl.infer.score_function import (
    check_estimator,
    mean_routing_nll,
    per_question,
    per_question_nll,
)
from vmoer_ppl.models.base import RouterModel
from vmoer_ppl.routing import RoutingPolicy, run_routed
from vmoer_ppl.sites import router_grid


def kl_term(q: dist.Distribution, p: dist.Distribution, value: torch.Tensor) -> torch.Tensor:
    """Analytic ``KL(q ‖ p)`` where registered, else the one-sample estimate ``log q − log p``.

    Parameters
    ----------
    q, p : Distribution
        Guide and prior with equal batch shapes.
    value : torch.Tensor
        The draw from ``q`` (used only by the fallback).

    Returns
    -------
    torch.Tensor
        KL per batch element, shape ``q.batch_shape``.
    """
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return q.log_prob(value) - p.log_prob(value)


def fused_loss(
    model: RouterModel,
    guide: RouterGuide,
    input_ids=None,
    attention_mask=None,
    labels=None,
    norm=None,
    recorder=None,
    estimator: str = "pathwise",
    **inputs,
):
    """Negative β-weighted ELBO of one minibatch from a single network pass.

    Parameters
    ----------
    model : RouterModel
        The Pyro model (its network, prior and likelihood are used).
    guide : RouterGuide
        The guide built for ``model``.
    input_ids : torch.Tensor
        `(B, T)` token ids.
    attention_mask : torch.Tensor, optional
        `(B, T)` 1 at tokens, 0 at padding.
    labels : torch.Tensor
        `(B,)` answers.
    norm : ShardNorm, optional
        This minibatch is one shard of a larger batch: normalise by that batch instead (see
        :mod:`vmoer_ppl.infer.sharding`).
    recorder : Recorder, optional
        Collects per-router diagnostics of this pass (:mod:`vmoer_ppl.infer.diagnostics`).
    estimator : str
        Gradient of the expected NLL: ``"pathwise"`` (the paper's: through the gate values of
        the selected experts) or ``"score-function"`` (:mod:`vmoer_ppl.infer.score_function`;
        same loss value, unbiased gradient that includes swapped experts).
    **inputs
        Further network inputs, as for the model.

    Returns
    -------
    torch.Tensor
        `()` the loss; equals ``TraceMeanField_ELBO().differentiable_loss(model, guide, ...)``.
    """
    if labels is None:
        raise ValueError("fused_loss needs labels; to simulate answers call the model instead")
    net_inputs = model.net_inputs(input_ids, attention_mask, **inputs)
    ctx = model.context(net_inputs)
    if norm is not None:
        ctx = dataclasses.replace(
            ctx, token_scale=model.beta / norm.tokens, global_scale=ctx.global_scale / norm.shards
        )
    sf = check_estimator(estimator) == "score-function"
    policy = FusedELBO(model, guide, ctx, len(labels), recorder, score_function=sf)
    outputs = run_routed(model.net, net_inputs, model.sites, policy)
    labels = labels.to(outputs.device) if isinstance(outputs, torch.Tensor) else labels
    nll = -poutine.trace(model.likelihood).get_trace(outputs, labels).log_prob_sum()
    shard = 1.0 if norm is None else len(labels) / norm.questions
    nll = nll * shard  # the likelihood averages over this shard's questions
    terms = policy.terms
    if sf and policy.logq:
        adv = per_question_nll(model, outputs, labels) - mean_routing_nll(
            model, guide, net_inputs, labels
        )
        surrogate = shard * (adv.detach() * sum(policy.logq)).sum()
        terms.append(surrogate - surrogate.detach())  # value 0, gradient E[(NLL - b) ∇log q]
    if recorder is not None:
        recorder.nll += nll.item()
    return nll + sum(terms)


class FusedELBO(RoutingPolicy):
    """Each Bayesian router draws from ``q`` and adds its KL to :attr:`terms` (one pass).

    Parameters
    ----------
    model : RouterModel
        Priors and routing semantics.
    guide : RouterGuide
        ``q`` of every latent.
    ctx : RouteContext
        Grids, plates and scales of the minibatch (the KL scales β/N come from it).
    num_questions : int
        B, for the score function's per-question ``log q``.
    recorder : Recorder, optional
        Collects per-router diagnostics.
    score_function : bool
        Detach the logit draws and keep their ``log q`` in :attr:`logq`.

    Attributes
    ----------
    terms : list of torch.Tensor
        `()` scaled KL terms, one per latent and grid.
    logq : list of torch.Tensor
        `(B,)` per-question ``log q`` of the draws (score function only).
    """

    def __init__(
        self, model, guide, ctx, num_questions: int, recorder=None, *, score_function=False
    ) -> None:
        self.model, self.guide, self.ctx = model, guide, ctx
        self.num_questions, self.recorder, self.sf = num_questions, recorder, score_function
        self.terms: list[torch.Tensor] = []
        self.logq: list[torch.Tensor] = []

    def draw_global(self, site, key: str, q, p) -> torch.Tensor:
        """Draw a global latent once per forward (as sample_latents does), adding its KL once."""
        ctx = self.ctx
        if (site.name, key) not in ctx.cache:
            value = q.rsample()
            self.terms.append(ctx.global_scale * kl_term(q, p, value).sum())
            ctx.cache[site.name, key] = value
        return ctx.cache[site.name, key]

    def draw_local(self, site, key: str, q, p, grid) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw a per-token latent; add its masked KL; returns (value used, KL `(S, T)`)."""
        drawn = value = q.rsample()
        if self.sf and key not in self.model.selection_latents:  # a constant draw; its log q
            value = drawn.detach()
            self.logq.append(per_question(q.log_prob(value), grid.mask, self.num_questions))
        kl = kl_term(q, p, drawn)  # (S, T); a sampled KL stays pathwise
        masked = torch.where(grid.mask, kl, kl.new_zeros(()))
        self.terms.append(self.ctx.token_scale * masked.sum())
        return value, kl

    def __call__(self, site, u, l_det):
        """Draw every latent of ``site`` from ``q``, add the KLs, route with the draws."""
        model, guide, grid = self.model, self.guide, self.ctx.grid()
        u, l_det = router_grid(site, u, l_det, *grid.shape)
        q_h, p_h = guide.hyper.dists(site), model.prior.hyper_priors(site)
        hyper = {k: self.draw_global(site, k, q, p_h[k]) for k, q in q_h.items()}  # guide's order
        q = guide.q_dists(site, u, l_det)
        p = model.prior_dists(site, u, l_det, hyper)
        values, kls = {}, {}
        for k, d in q.items():
            if k in model.global_latents:
                values[k] = self.draw_global(site, k, d, p[k])
            else:
                values[k], kls[k] = self.draw_local(site, k, d, p[k], grid)
        out = model.route_latents(site, u, l_det, values)
        if self.recorder is not None:
            self.recorder.add(site, model, q, p, kls, l_det, out, grid.mask)
        return out
