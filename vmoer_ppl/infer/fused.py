"""The fused ELBO: one network pass where each Bayesian router samples ``q`` and adds its KL.

Same estimator as ``TraceMeanField_ELBO`` on the (model, guide) pair, with the same random draws
in the same order, but the network runs once instead of twice and no Pyro trace is kept for the
router latents. ``tests/infer/test_fused.py`` checks equal loss and gradients at a fixed seed.
"""

from __future__ import annotations

import dataclasses
import functools

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
from vmoer_ppl.sites import install_routing, router_grid


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
    terms: list[torch.Tensor] = []
    sf = check_estimator(estimator) == "score-function"
    logq = []  # score function: per-question log q of the draws, (B,) per grid and router

    def draw_global(site, key, q, p):
        """Draw a global latent once per forward (as sample_latents does), adding its KL once."""
        if (site.name, key) not in ctx.cache:
            value = q.rsample()
            terms.append(ctx.global_scale * kl_term(q, p, value).sum())
            ctx.cache[site.name, key] = value
        return ctx.cache[site.name, key]

    def route(site, u, l_det):
        grid = ctx.grid()
        u, l_det = router_grid(site, u, l_det, *grid.shape)
        q_h, p_h = guide.hyper.dists(site), model.prior.hyper_priors(site)
        hyper = {k: draw_global(site, k, q, p_h[k]) for k, q in q_h.items()}  # the guide's order
        q = guide.q_dists(site, u, l_det)
        p = model.prior_dists(site, u, l_det, hyper)
        values, kls = {}, {}
        for k, d in q.items():
            if k in model.global_latents:
                values[k] = draw_global(site, k, d, p[k])
            else:
                drawn = values[k] = d.rsample()
                if sf and k not in model.selection_latents:  # a constant draw; its log q
                    values[k] = drawn.detach()
                    logq.append(per_question(d.log_prob(values[k]), grid.mask, len(labels)))
                kl = kl_term(d, p[k], drawn)  # (S, T); a sampled KL stays pathwise
                kls[k] = kl
                terms.append(ctx.token_scale * torch.where(grid.mask, kl, kl.new_zeros(())).sum())
        out = model.route_latents(site, u, l_det, values)
        if recorder is not None:
            recorder.add(site, model, q, p, kls, l_det, out, grid.mask)
        return out

    with install_routing(model.sites, lambda s: functools.partial(route, s)):
        outputs = model.net(**net_inputs)
    labels = labels.to(outputs.device) if isinstance(outputs, torch.Tensor) else labels
    nll = -poutine.trace(model.likelihood).get_trace(outputs, labels).log_prob_sum()
    shard = 1.0 if norm is None else len(labels) / norm.questions
    nll = nll * shard  # the likelihood averages over this shard's questions
    if sf and logq:
        adv = per_question_nll(model, outputs, labels) - mean_routing_nll(
            model, guide, net_inputs, labels
        )
        surrogate = shard * (adv.detach() * sum(logq)).sum()
        terms.append(surrogate - surrogate.detach())  # value 0, gradient E[(NLL - b) ∇log q]
    if recorder is not None:
        recorder.nll += nll.item()
    return nll + sum(terms)
