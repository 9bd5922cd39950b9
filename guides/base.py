"""Shared machinery of the amortised guides: run the frozen network with ``q`` at the routers.

A guide is a module whose ``forward`` has exactly the model's signature (STYLE rule 5). It owns
its amortisation networks and mean-field parameters for the prior's hyper-latents; it reaches the
frozen network through the model it was built from.

Divergence from STYLE rule 5: guides are plain ``nn.Module``s, not ``PyroModule``s. None of their
parameters is a ``PyroParam``, so nothing reaches Pyro's global param store, and a guide works
whether or not ``pyro.settings`` ``module_local_params`` was set when it was built (a
``PyroModule`` built outside that setting fails inside it).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import biject_to, constraints
from vmoer_ppl.models.base import RouterModel, sample_latents
from vmoer_ppl.models.dims import RouteContext

from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.priors.base import Prior
from vmoer_ppl.priors.gaussian import GaussianPrior
from vmoer_ppl.priors.shorthands import gaussian_scale
from vmoer_ppl.routing import RoutingPolicy, run_routed
from vmoer_ppl.sites import RouterSite, router_grid


class HyperGuide(nn.Module):
    """Mean-field ``q`` for the prior's global hyper-latents (Normal or LogNormal per site)."""

    def __init__(self, model: RouterModel) -> None:
        super().__init__()
        self.loc, self.log_scale = nn.ParameterDict(), nn.ParameterDict()
        self.keys: dict[str, list[tuple]] = {}
        for i, site in enumerate(model.sites):
            self.keys[site.name] = []
            for key, p in model.prior.hyper_priors(site).items():
                if p.support not in (constraints.real, constraints.positive):
                    raise ValueError(
                        f"{site.latent(key)}: hyper-prior support must be real or positive"
                    )
                pid = f"s{i}_{key}"
                init = biject_to(p.support).inv(p.mean.detach())
                self.loc[pid] = nn.Parameter(init.clone())
                self.log_scale[pid] = nn.Parameter(torch.full_like(init, -2.3))  # scale 0.1
                self.keys[site.name].append((key, pid, p.support))

    def dists(self, site: RouterSite) -> dict[str, dist.Distribution]:
        """``q`` of each hyper-latent at ``site``."""
        out = {}
        for key, pid, support in self.keys[site.name]:
            loc, scale = self.loc[pid], self.log_scale[pid].exp()
            out[key] = (
                dist.LogNormal(loc, scale)
                if support is constraints.positive
                else dist.Normal(loc, scale)
            )
        return out


class RouterGuide(nn.Module):
    """Base of the amortised router guides, and the registry of router families.

    A concrete guide names its family and the model it mirrors as class attributes; defining
    the class registers the family (laplace-torch builds its dispatch the same way), so a new
    family is its model file and its guide file and nothing else.

    Parameters
    ----------
    model : RouterModel
        The model this guide mirrors; its network, sites and routing semantics are reused.
    """

    #: The family's name, e.g. ``"logit-fc"``; ``None`` for bases and baselines (not registered).
    family: ClassVar[str | None] = None
    #: The router model this guide mirrors.
    model_cls: ClassVar[type[RouterModel]]
    #: Extra keyword arguments of ``model_cls`` (e.g. ``{"per_expert": True}``).
    model_kwargs: ClassVar[Mapping[str, Any]] = {}
    #: Scale of the family's default prior ``N(loc, s²)`` when the user gives none.
    default_prior_scale: ClassVar[float] = 1.0
    #: Amortised on router inputs: takes ``trunk_dim``, and ``init_scale`` = the prior's scale.
    amortised: ClassVar[bool] = True
    #: Every registered family: name -> guide class (filled by subclassing).
    registry: ClassVar[dict[str, type[RouterGuide]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("family")
        if name:
            known = RouterGuide.registry.get(name)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise ValueError(f"router family {name!r} is already {known.__name__}")
            RouterGuide.registry[name] = cls

    @classmethod
    def default_prior(cls) -> Prior:
        """The prior when the user gives none: ``N(loc, default_prior_scale²)``."""
        return GaussianPrior(cls.default_prior_scale)

    @classmethod
    def build_kwargs(cls, prior: Prior, sites, trunk_dim: int | None) -> dict[str, Any]:
        """Constructor keywords: trunk width, and ``q`` starting at a Gaussian prior's scale.

        Parameters
        ----------
        prior : Prior
            The model's prior.
        sites : sequence of RouterSite
            The Bayesian routers.
        trunk_dim : int, optional
            Amortisation trunk width.

        Returns
        -------
        dict
        """
        if not cls.amortised:
            return {}
        kwargs: dict[str, Any] = {"trunk_dim": trunk_dim}
        scales = {s.name: gaussian_scale(prior, s) for s in sites}
        if all(v is not None for v in scales.values()):
            kwargs["init_scale"] = scales  # q starts at the prior; Δμ, σ in its units
        return kwargs

    def place(self, device_of) -> None:
        """Put each router's amortisation net on ``device_of(router)``, in router-math dtype."""
        if not self.amortised:
            return  # weight guides create their parameters beside the router weight
        nets = cast(nn.ModuleList, self.nets)
        for i, site in enumerate(self.model.sites):
            nets[i].to(device=device_of(site.router), dtype=site.dtype)

    def __init__(self, model: RouterModel) -> None:
        super().__init__()
        self.model = model  # a plain object, not a module: its network stays out of Pyro's reach
        self.hyper = HyperGuide(model)
        self.index = {s.name: i for i, s in enumerate(model.sites)}
        self.scales: dict[str, float] = {}

    def set_scales(self, init_scale: float | Mapping[str, float]) -> None:
        """Set the unit of each router's variational parameters (its prior scale ``s_ℓ``).

        The amortised heads output ``Δμ`` and ``log σ`` in units of ``s_ℓ``: ``q`` has mean
        ``loc + s_ℓ·Δμ`` and scale ``s_ℓ·exp(raw)``, so at initialisation ``q`` is the prior and a
        unit step moves the mean and the scale alike, whatever the router's logit spread.

        Parameters
        ----------
        init_scale : float or mapping of str to float
            One scale for every router, or one per router name (all routers must be given).
        """
        if isinstance(init_scale, Mapping):
            missing = [s.name for s in self.model.sites if s.name not in init_scale]
            if missing:
                raise ValueError(f"init_scale has no entry for routers {missing}")
            scales = {s.name: float(init_scale[s.name]) for s in self.model.sites}
        else:
            scales = {s.name: float(init_scale) for s in self.model.sites}
        bad = {k: v for k, v in scales.items() if not (v > 0 and v < float("inf"))}
        if bad:
            raise ValueError(f"init_scale must be finite and > 0; got {bad}")
        self.scales = scales

    def scale_at(self, site: RouterSite) -> float:
        """The unit ``s_ℓ`` of the variational parameters at ``site``."""
        return self.scales[site.name]

    @abstractmethod
    def q_dists(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor
    ) -> dict[str, dist.Distribution]:
        """``q`` of each latent at ``site``, in the model's order and with the model's shapes."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, **inputs) -> None:
        """Run the network with ``q`` sampled at each Bayesian router (same signature as the model).

        Parameters
        ----------
        input_ids : torch.Tensor
            `(B, T)` token ids.
        attention_mask : torch.Tensor, optional
            `(B, T)` 1 at tokens, 0 at padding.
        labels : torch.Tensor, optional
            `(B,)` answers; unused (the guide is amortised on router inputs only).
        **inputs
            Further network inputs, as for the model.
        """
        net_inputs = self.model.net_inputs(input_ids, attention_mask, **inputs)
        ctx = self.model.context(net_inputs)
        run_routed(self.model.net, net_inputs, self.model.sites, GuideRouting(self, ctx))

    def save_pretrained(self, directory, *, overwrite: bool = False):
        """Write the router adapter (safetensors + JSON); see :mod:`vmoer_ppl.adapter_io`."""
        from vmoer_ppl.adapter_io import save_pretrained

        return save_pretrained(self, directory, overwrite=overwrite)

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload the adapter and a model card to the hub; see :func:`vmoer_ppl.hub.push_to_hub`."""
        from vmoer_ppl.hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def point_values(self, q: Mapping[str, dist.Distribution]) -> dict[str, torch.Tensor]:
        """A point value of each latent for ``mean`` mode: the mean (median for log-normals)."""
        return {k: point_value(d) for k, d in q.items()}


def point_value(d: dist.Distribution) -> torch.Tensor:
    """Mean of a Gaussian, median of a log-normal, zero noise for a Gumbel (plain top-K)."""
    base = d.base_dist if isinstance(d, dist.Independent) else d
    if isinstance(base, dist.TransformedDistribution):
        return base.base_dist.mean.exp()
    if isinstance(base, dist.Gumbel):
        return torch.zeros_like(base.loc)
    return d.mean


class GuideRouting(RoutingPolicy):
    """The guide's routing: hyper-latents, then ``q`` of each latent, in the model's order.

    Parameters
    ----------
    guide : RouterGuide
        Supplies ``q``; its model supplies the routing semantics.
    ctx : RouteContext
        Grids, plates and scales of the minibatch.
    """

    def __init__(self, guide: RouterGuide, ctx: RouteContext) -> None:
        self.guide, self.ctx = guide, ctx

    def __call__(self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor) -> RoutingOutput:
        """Draw from ``q`` at ``site`` under the model's plates and route with the draws."""
        guide, ctx = self.guide, self.ctx
        model = guide.model
        u, l_det = router_grid(site, u, l_det, *ctx.grid().shape)
        hyper = guide.hyper.dists(site)  # sampled first at each router, in the model's order
        sample_latents(site, hyper, ctx, frozenset(hyper))
        values = sample_latents(site, guide.q_dists(site, u, l_det), ctx, model.global_latents)
        return model.route_latents(site, u, l_det, values)
