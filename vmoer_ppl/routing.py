"""Routed forwards: run a frozen network with a routing policy at its Bayesian routers.

Everything that runs the network "with something at each router" is a :class:`RoutingPolicy`:
the model's prior draws, the guide's ``q`` draws, the fused ELBO's KL accumulation, predictive
routing, the stability probe, the fine-tuned baselines and the logit-spread measurement.
:func:`run_routed` is the one place that installs a policy and calls the network; a policy keeps
its own state (draws, KL terms, captured experts) as attributes, like TyXe's messengers keep
theirs, so no closure or ``functools.partial`` carries it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from vmoer_ppl.nn.gates import route
from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.sites import RouterSite, install_routing


class RoutingPolicy(ABC):
    """What each Bayesian router does with its input during one forward.

    Subclasses implement :meth:`__call__`; :func:`run_routed` calls it once per router per
    routed grid, in network order.
    """

    @abstractmethod
    def __call__(self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor) -> RoutingOutput:
        """Route the tokens reaching ``site``.

        Parameters
        ----------
        site : RouterSite
            The router being called.
        u : torch.Tensor
            `(B, T, D)` or `(B*T, D)` router input.
        l_det : torch.Tensor
            Its deterministic logits ``u W_rᵀ``, `(..., E)`.

        Returns
        -------
        RoutingOutput
            Gate logits, weights and experts, shaped like ``l_det`` / `(..., K)`.
        """


class Deterministic(RoutingPolicy):
    """The architecture's own routing: the gate rule on ``l_det`` (a no-op policy)."""

    def __call__(self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor) -> RoutingOutput:
        """Top-K of ``l_det`` under ``site``'s gate rule."""
        return route(l_det, site.top_k, site.gate_rule)


def run_routed(
    net: nn.Module,
    inputs: Mapping[str, Any],
    sites: Sequence[RouterSite],
    policy: RoutingPolicy,
) -> Any:
    """Call ``net(**inputs)`` with ``policy`` routing at every router in ``sites``.

    Parameters
    ----------
    net : nn.Module
        The frozen network.
    inputs : mapping
        Its keyword inputs, e.g. ``input_ids`` `(B, T)` and ``attention_mask`` `(B, T)`.
    sites : sequence of RouterSite
        The routers the policy routes; the others route deterministically.
    policy : RoutingPolicy
        Called as ``policy(site, u, l_det)`` at each of ``sites``.

    Returns
    -------
    Any
        The network's output, e.g. answer logits `(B, C)`.
    """
    with install_routing(sites, policy):
        return net(**inputs)


class Capture(Deterministic):
    """Deterministic routing that keeps each router's first input and logits.

    Attributes
    ----------
    inputs : dict of str to (RouterSite, torch.Tensor, torch.Tensor)
        Router name -> (site, ``u``, ``l_det``) of its first call, detached.
    """

    def __init__(self) -> None:
        self.inputs: dict[str, tuple[RouterSite, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor) -> RoutingOutput:
        """Keep ``(site, u, l_det)`` on the first call, then route with the gate rule."""
        self.inputs.setdefault(site.name, (site, u.detach(), l_det.detach()))
        return super().__call__(site, u, l_det)
