"""The fused ELBO: one network pass where each Bayesian router samples ``q`` and adds its KL.

Same estimator as ``TraceMeanField_ELBO`` on the (model, guide) pair, with the same random draws
in the same order, but the network runs once instead of twice and no Pyro trace is kept for the
router latents. ``tests/infer/test_fused.py`` checks equal loss and gradients at a fixed seed.
"""

from __future__ import annotations

import functools

import pyro.distributions as dist
import torch
from pyro import poutine
from torch.distributions import kl_divergence

from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.infer import kl as _kl  # noqa: F401  (registers the MVN-Independent KL)
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


def _masked(kl: torch.Tensor, mask: torch.Tensor, is_global: bool) -> torch.Tensor:
    return kl.sum() if is_global else torch.where(mask, kl, kl.new_zeros(())).sum()


def fused_loss(
    model: RouterModel,
    guide: RouterGuide,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
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

    Returns
    -------
    torch.Tensor
        `()` the loss; equals ``TraceMeanField_ELBO().differentiable_loss(model, guide, ...)``.
    """
    if labels is None:
        raise ValueError("fused_loss needs labels; to simulate answers call the model instead")
    ctx = model.context(input_ids, attention_mask)
    kl_total = torch.zeros((), dtype=model.sites[0].weight.dtype, device=input_ids.device)

    def route(site, u, l_det):
        nonlocal kl_total
        u, l_det = router_grid(site, u, l_det, ctx.batch_size, ctx.seq_len)
        q_h, p_h = guide.hyper.dists(site), model.prior.hyper_priors(site)
        hyper = {k: q.rsample() for k, q in q_h.items()}  # same draws, same order as the guide
        for k, q in q_h.items():
            kl_total = kl_total + ctx.global_scale * kl_term(q, p_h[k], hyper[k]).sum()
        q = guide.q_dists(site, u, l_det)
        p = model.prior_dists(site, u, l_det, hyper)
        values = {k: d.rsample() for k, d in q.items()}
        for k in q:
            is_global = k in model.global_latents
            kl = _masked(kl_term(q[k], p[k], values[k]), ctx.mask, is_global)
            kl_total = kl_total + (ctx.global_scale if is_global else ctx.token_scale) * kl
        return model.route_latents(site, u, l_det, values)

    with install_routing(model.sites, lambda s: functools.partial(route, s)):
        outputs = model.net(input_ids, attention_mask)
    nll = -poutine.trace(model.likelihood).get_trace(outputs, labels).log_prob_sum()
    return nll + kl_total
