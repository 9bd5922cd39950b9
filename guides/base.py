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

import functools
from abc import abstractmethod
from collections.abc import Mapping

import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import biject_to, constraints
from vmoer_ppl.models.base import RouterModel, sample_latents

from vmoer_ppl.sites import RouterSite, install_routing, router_grid


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
    """Base of the amortised router guides.

    Parameters
    ----------
    model : RouterModel
        The model this guide mirrors; its network, sites and routing semantics are reused.
    """

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

    def _route(self, site, ctx, u, l_det):
        u, l_det = router_grid(site, u, l_det, *ctx.grid().shape)
        hyper = self.hyper.dists(site)  # sampled first at each router, in the model's order
        sample_latents(site, hyper, ctx, frozenset(hyper))
        values = sample_latents(site, self.q_dists(site, u, l_det), ctx, self.model.global_latents)
        return self.model.route_latents(site, u, l_det, values)

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
        with install_routing(self.model.sites, lambda s: functools.partial(self._route, s, ctx)):
            self.model.net(**net_inputs)

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
