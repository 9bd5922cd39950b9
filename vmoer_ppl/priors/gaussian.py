"""Isotropic Gaussian prior around the family's location: ``N(loc, s² I)``."""

from __future__ import annotations

from collections.abc import Mapping

import pyro.distributions as dist
import torch

from vmoer_ppl.priors.base import Prior, check_scale
from vmoer_ppl.sites import RouterSite


class GaussianPrior(Prior):
    """``latent ~ N(loc, scale² I)``; VMoER's prior for logits is ``N(l_det, I)``.

    Parameters
    ----------
    scale : float
        Standard deviation ``s > 0``.

    References
    ----------
    1. VMoER, arXiv:2603.09453, §3.1 (prior mean ``l_det = u W_r``); PAPER.md §3.2.
    """

    config_type = "gaussian"

    def __init__(self, scale: float = 1.0) -> None:
        check_scale(scale)
        self.scale = float(scale)

    def to_config(self) -> dict:
        """``{"type": "gaussian", "scale": s}``."""
        return {"type": "gaussian", "scale": self.scale}

    @classmethod
    def from_config(cls, spec) -> GaussianPrior:
        """Rebuild from :meth:`to_config`."""
        return cls(spec["scale"])

    def prior_dist(
        self, site: RouterSite, loc: torch.Tensor, hyper: Mapping[str, torch.Tensor]
    ) -> dist.Distribution:
        """``Normal(loc, scale)``, batch shape ``loc.shape``."""
        return dist.Normal(loc, torch.full_like(loc, self.scale))

    def __repr__(self) -> str:
        return f"GaussianPrior(scale={self.scale})"
