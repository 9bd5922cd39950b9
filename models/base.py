"""Shared machinery of the router models: run the frozen network with prior sites at routers.

A family subclasses :class:`RouterModel` and supplies three things: the prior distribution of
each latent (``prior_dists``), how sampled latents route tokens (``route_latents``), and the
routing-logit samples the predictive averages (``logit_samples``). The frozen network is held
as a plain attribute, outside any ``PyroModule``, so that Pyro never registers or trains its
parameters (pyro issue #3438).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from torch import nn
from vmoer_ppl.models.dims import RouteContext, default_grids, make_context, token_plates
from vmoer_ppl.models.likelihoods import CategoricalLikelihood, Likelihood

from vmoer_ppl.nn.link import (
    AnalyticRouting,
    gaussian_gate_logits,
    gaussian_mutual_information,
    is_sigmoid_rule,
    link_probs,
    variances,
)
from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.priors.base import Prior
from vmoer_ppl.routing import RoutingPolicy, run_routed
from vmoer_ppl.sites import RouterSite, router_grid


def is_gaussian(d: dist.Distribution) -> bool:
    """Whether ``d`` is a (possibly ``Independent``-wrapped) Normal or a multivariate normal."""
    while isinstance(d, dist.Independent):
        d = d.base_dist
    return isinstance(d, (dist.Normal, dist.MultivariateNormal, dist.LowRankMultivariateNormal))


def declare_batch(d: dist.Distribution, batch_ndim: int) -> dist.Distribution:
    """Reinterpret all but the first ``batch_ndim`` batch dims of ``d`` as event dims."""
    extra = len(d.batch_shape) - batch_ndim
    return d.to_event(extra) if extra > 0 else d


def sample_latents(
    site: RouterSite,
    dists: Mapping[str, dist.Distribution],
    ctx: RouteContext,
    global_keys: frozenset[str],
) -> dict[str, torch.Tensor]:
    """Sample each latent of ``site`` under the right plates and scales (model and guide alike).

    Local latents are sampled per routed grid, under its plates; global latents once per forward
    (the first grid that reaches the router samples them, later grids reuse the value).

    Parameters
    ----------
    site : RouterSite
        The router.
    dists : mapping
        Latent key -> distribution; local ones have batch shape `(S, T)`, global ones `()`.
    ctx : RouteContext
        Grids, plates and scales of this minibatch.
    global_keys : frozenset of str
        Keys of global (not per-token) latents.

    Returns
    -------
    dict
        Latent key -> sampled value.
    """
    values, grid = {}, ctx.grid()
    for key, d in dists.items():
        if key in global_keys:
            if (site.name, key) not in ctx.cache:
                with poutine.scale(scale=ctx.global_scale):
                    ctx.cache[site.name, key] = pyro.sample(site.latent(key), d)
            values[key] = ctx.cache[site.name, key]
        else:
            with token_plates(grid, ctx):
                values[key] = pyro.sample(site.latent(key, grid.name), d)
    return values


class RouterModel(ABC):
    """Base of the Pyro router models; see the family modules for the generative stories.

    Parameters
    ----------
    net : nn.Module
        The frozen MoE network, mapping ``(input_ids, attention_mask)`` to answer logits.
    sites : sequence of RouterSite
        The routers made Bayesian.
    prior : Prior
        Prior over the family's latent.
    likelihood : Likelihood, optional
        Default: :class:`CategoricalLikelihood` over answer options.
    beta : float
        KL weight β (DESIGN.md: 0.01).
    num_data : int
        Training-set size; scales the KL of global latents.
    """

    family: ClassVar[str]
    global_latents: ClassVar[frozenset[str]] = frozenset()
    #: Latents used only to select experts in one sampled forward, not by :meth:`logit_samples`
    #: (the temperature family's Gumbel noise): MC and mean prediction do not draw them.
    selection_latents: ClassVar[frozenset[str]] = frozenset()
    #: Whether the latent is the routing logits, so a prior scale in logit units (``--prior-scale
    #: relative:C``, ``auto``) applies.
    logit_scale_prior: ClassVar[bool] = False

    def __init__(
        self,
        net: nn.Module,
        sites: Sequence[RouterSite],
        *,
        prior: Prior,
        likelihood: Likelihood | None = None,
        beta: float = 0.01,
        num_data: int = 1,
    ) -> None:
        if not sites:
            raise ValueError("no Bayesian router sites given; choose layers with routers")
        if beta < 0 or num_data < 1:
            raise ValueError(f"need beta >= 0 and num_data >= 1, got {beta=}, {num_data=}")
        self.net, self.sites, self.prior = net, list(sites), prior
        self.likelihood = likelihood or CategoricalLikelihood()
        self.beta, self.num_data = float(beta), int(num_data)

    # -- what a family supplies -------------------------------------------------------------
    @abstractmethod
    def prior_dists(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor, hyper: Mapping
    ) -> dict[str, dist.Distribution]:
        """Prior of each latent at ``site``, given router input `(B, T, D)` and ``l_det``."""

    @abstractmethod
    def route_latents(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor, values: Mapping
    ) -> RoutingOutput:
        """Route tokens given one value of each latent."""

    @abstractmethod
    def logit_samples(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor, values: Mapping
    ) -> torch.Tensor:
        """Routing logits `(S, B, T, E)` from latents with a leading sample dim S."""

    def analytic_routing(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor, q: Mapping, link: str
    ) -> AnalyticRouting:
        """Closed-form predictive routing (``mode="analytic"``): no draws.

        Families whose guide makes the logits Gaussian supply ``logit_moments``; the gate
        logits, ``E[p]``, the mutual information (``½ tr(FΣ)``) and ``tr Σ`` follow from them
        (:mod:`vmoer_ppl.nn.link`).
        """
        mean, cov = self.logit_moments(site, u, l_det, q)
        gate = gaussian_gate_logits(mean, cov, site.gate_rule, link)
        probs = gate.exp() if not is_sigmoid_rule(site.gate_rule) else link_probs(mean, cov, link)
        ilv = variances(cov, mean.dim()).sum(-1)
        return AnalyticRouting(gate, probs, gaussian_mutual_information(mean, cov), ilv)

    def logit_moments(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor, q: Mapping
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean `(B, T, E)` and variances `(B, T, E)` or covariance `(B, T, E, E)` of the logits."""
        raise NotImplementedError(
            f"the {self.family!r} family has no closed-form predictive routing; "
            "use mode='mc' (Monte Carlo over its latents)"
        )

    def logit_variance(
        self, q: Mapping[str, dist.Distribution], samples: torch.Tensor, l_det: torch.Tensor
    ) -> torch.Tensor:
        """Inferred logit variance ``tr Cov_q[logits]`` `(B, T)`, from `(S, B, T, E)` draws.

        Families with Gaussian logits override this with the closed form.
        """
        if samples.shape[0] > 1:
            return samples.var(0, unbiased=True).sum(-1)
        return torch.zeros_like(l_det[..., 0])

    def _not_gaussian(self, name: str, d) -> NotImplementedError:
        return NotImplementedError(
            f"q({name}) of the {self.family!r} family is {type(d).__name__}, not Gaussian: no "
            "closed-form predictive routing; use mode='mc'"
        )

    # -- the model ---------------------------------------------------------------------------
    def net_inputs(self, input_ids=None, attention_mask=None, **inputs) -> dict[str, torch.Tensor]:
        """The network's keyword inputs (``None`` dropped), on the device of its first weights."""
        named = {"input_ids": input_ids, "attention_mask": attention_mask, **inputs}
        first = next(self.net.parameters(), None)
        device = None if first is None or first.device.type == "meta" else first.device
        return {
            k: v.to(device) if isinstance(v, torch.Tensor) and device is not None else v
            for k, v in named.items()
            if v is not None
        }

    def context(self, inputs: Mapping[str, torch.Tensor]) -> RouteContext:
        """Grids, plates and scales of one minibatch of network inputs."""
        if hasattr(self.net, "routing_grids"):
            grids = self.net.routing_grids(**inputs)
        else:
            grids = default_grids(inputs["input_ids"], inputs.get("attention_mask"))
        return make_context(grids, beta=self.beta, num_data=self.num_data)

    def sample_hyper(self, site: RouterSite, ctx: RouteContext) -> dict[str, torch.Tensor]:
        """Sample the prior's hyper-latents at ``site`` (global sites, once per forward)."""
        dists = self.prior.hyper_priors(site)
        return sample_latents(site, dists, ctx, frozenset(dists))

    def __call__(self, input_ids=None, attention_mask=None, labels=None, **inputs) -> torch.Tensor:
        """Run the network with prior sites at the Bayesian routers and observe the answers.

        Parameters
        ----------
        input_ids : torch.Tensor
            `(B, T)` token ids (networks with other inputs take them as keywords instead).
        attention_mask : torch.Tensor, optional
            `(B, T)` 1 at tokens, 0 at padding.
        labels : torch.Tensor, optional
            `(B,)` answer indices; ``None`` simulates answers (prior/posterior predictive).
        **inputs
            Further network inputs, e.g. the cloze scorer's ``prompt_ids`` and ``option_ids``.

        Returns
        -------
        torch.Tensor
            `(B,)` observed or simulated answers.
        """
        net_inputs = self.net_inputs(input_ids, attention_mask, **inputs)
        ctx = self.context(net_inputs)
        outputs = run_routed(self.net, net_inputs, self.sites, PriorRouting(self, ctx))
        return self.likelihood(outputs, labels, ctx.batch_plate(outputs.shape[0]))

    def site_names(self) -> set[str]:
        """Names of all latent sample sites, by tracing the model once on one token."""
        ids = torch.zeros(1, 1, dtype=torch.long, device=self.sites[0].weight.device)
        tr = poutine.trace(poutine.block(self, hide=["obs"])).get_trace(ids)
        return {
            n
            for n, s in tr.nodes.items()
            if s["type"] == "sample" and not site_is_subsample(s) and not s["is_observed"]
        }


class PriorRouting(RoutingPolicy):
    """The model's routing: each latent drawn from its prior under the plates, then routed.

    Parameters
    ----------
    model : RouterModel
        Supplies the priors and the routing semantics.
    ctx : RouteContext
        Grids, plates and scales of the minibatch.
    """

    def __init__(self, model: RouterModel, ctx: RouteContext) -> None:
        self.model, self.ctx = model, ctx

    def __call__(self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor) -> RoutingOutput:
        """Sample the hyper-latents, then the latents, at ``site``; route with the draws."""
        model, ctx = self.model, self.ctx
        u, l_det = router_grid(site, u, l_det, *ctx.grid().shape)
        dists = model.prior_dists(site, u, l_det, model.sample_hyper(site, ctx))
        values = sample_latents(site, dists, ctx, model.global_latents)
        return model.route_latents(site, u, l_det, values)
