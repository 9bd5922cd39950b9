"""Guides whose ``q`` at each router is read off an amortisation head on the router's input.

:class:`AmortisedGuide` builds one :class:`~vmoer_ppl.nn.amortised.AmortisedHeads` per Bayesian
router (widths from :meth:`AmortisedGuide.head_widths`) and sets each router's unit ``s_ℓ``;
:class:`AmortisedLogitGuide` adds what every guide over routing logits shares. A concrete guide
states its head widths and builds its distribution from the head's two outputs.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

import pyro.distributions as dist
import torch
from torch import nn
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.models.base import RouterModel
from vmoer_ppl.models.logit_router import LogitRouterModel

from vmoer_ppl.nn.amortised import AmortisedHeads
from vmoer_ppl.sites import RouterSite


class AmortisedGuide(RouterGuide):
    """Base of the guides amortised on router inputs ``u`` (not registered: no family).

    Parameters
    ----------
    model : RouterModel
        The model to mirror.
    trunk_dim : int, optional
        Trunk width H (default ``D // trunk_divisor``).
    init_scale : float or mapping of str to float, optional
        The unit ``s_ℓ`` of the heads' outputs (one, or one per router name): the prior scale;
        default the family's ``default_prior_scale``.

    Attributes
    ----------
    trunk_divisor : int
        Class attribute: the default trunk width is ``D // trunk_divisor`` (4; a family whose
        head needs fewer trunk features sets a larger one).
    trunk_dim : int or None
        The trunk width used at every router (``None`` when routers of different widths D got
        different defaults); recorded in saved adapters so that they load whatever the default.
    """

    trunk_divisor: int = 4

    def __init__(
        self,
        model: RouterModel,
        *,
        trunk_dim: int | None = None,
        init_scale: float | Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(model)
        self.set_scales(self.default_prior_scale if init_scale is None else init_scale)
        self.nets = nn.ModuleList(
            AmortisedHeads(
                s.hidden_size,
                *self.head_widths(s),
                trunk_dim=trunk_dim,
                trunk_divisor=self.trunk_divisor,
            )
            for s in model.sites
        )
        widths = {net.trunk[0].out_features for net in self.nets}
        self.trunk_dim = widths.pop() if len(widths) == 1 else None

    @abstractmethod
    def head_widths(self, site: RouterSite) -> tuple[int, int]:
        """Widths ``(location outputs, scale outputs)`` of the head at ``site``."""

    def head(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """The head's outputs at ``site`` and its unit.

        Parameters
        ----------
        site : RouterSite
            The router.
        u : torch.Tensor
            `(B, T, D)` router inputs.
        l_det : torch.Tensor
            `(B, T, E)` deterministic logits (their dtype is the router math's).

        Returns
        -------
        tuple
            Location outputs `(B, T, m_loc)`, raw scale outputs `(B, T, m_scale)`, and ``s_ℓ``.
        """
        loc, raw = self.nets[self.index[site.name]](u.to(l_det.dtype))
        return loc, raw, self.scale_at(site)


class AmortisedLogitGuide(AmortisedGuide):
    """Base of the amortised guides over routing logits: ``q`` has the single latent ``logits``."""

    model_cls = LogitRouterModel

    @abstractmethod
    def logits_dist(
        self, site: RouterSite, u: torch.Tensor, l_det: torch.Tensor
    ) -> dist.Distribution:
        """``q`` over logits, batch `(B, T)`, event `(E,)`."""

    def q_dists(self, site, u, l_det):
        """``{"logits": q}``."""
        return {"logits": self.logits_dist(site, u, l_det)}
