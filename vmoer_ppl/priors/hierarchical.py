"""Hierarchical Gaussian prior: the per-layer prior scale is itself a latent."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pyro.distributions as dist
import torch

from vmoer_ppl.priors.base import Prior, check_scale
from vmoer_ppl.sites import RouterSite


class HierarchicalGaussianPrior(Prior):
    """``s_ℓ ~ LogNormal(log scale, hyper_scale)``, then ``latent ~ N(loc, s_ℓ² I)``.

    One scale per Bayesian layer, shared by all tokens; its posterior tells how far each layer's
    routing wants to move from the deterministic router. Site: ``{router}.prior_scale``.

    Parameters
    ----------
    scale : float
        Median of the per-layer scale.
    hyper_scale : float
        Log-space spread of the per-layer scale.
    """

    config_type = "hierarchical"

    def __init__(self, scale: float = 1.0, hyper_scale: float = 0.5) -> None:
        check_scale(scale)
        check_scale(hyper_scale, "hyper_scale")
        self.scale, self.hyper_scale = float(scale), float(hyper_scale)

    def to_config(self) -> dict:
        """``{"type": "hierarchical", "scale": s, "hyper_scale": h}``."""
        return {"type": "hierarchical", "scale": self.scale, "hyper_scale": self.hyper_scale}

    @classmethod
    def from_config(cls, spec) -> HierarchicalGaussianPrior:
        """Rebuild from :meth:`to_config`."""
        return cls(spec["scale"], spec["hyper_scale"])

    def hyper_priors(self, site: RouterSite) -> dict[str, dist.Distribution]:
        """``{"prior_scale": LogNormal(log scale, hyper_scale)}``."""
        loc = torch.tensor(math.log(self.scale), dtype=site.dtype, device=site.weight.device)
        return {"prior_scale": dist.LogNormal(loc, torch.tensor(self.hyper_scale).to(loc))}

    def prior_dist(
        self, site: RouterSite, loc: torch.Tensor, hyper: Mapping[str, torch.Tensor]
    ) -> dist.Distribution:
        """``Normal(loc, s_ℓ)`` with ``s_ℓ = hyper["prior_scale"]``."""
        return dist.Normal(loc, hyper["prior_scale"].expand(loc.shape))

    def __repr__(self) -> str:
        return f"HierarchicalGaussianPrior(scale={self.scale}, hyper_scale={self.hyper_scale})"
