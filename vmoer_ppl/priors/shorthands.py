"""Turn the prior shorthands users pass (a number, a dict, a callable) into a :class:`Prior`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyro.distributions as dist
import torch

from vmoer_ppl.priors.base import Prior, prior_from_config
from vmoer_ppl.priors.gaussian import GaussianPrior
from vmoer_ppl.sites import RouterSite


class CallablePrior(Prior):
    """Wrap ``fn(site, loc, hyper) -> Distribution`` as a prior."""

    def __init__(self, fn: Callable[..., dist.Distribution]) -> None:
        self.fn = fn

    def prior_dist(self, site, loc, hyper):
        """Call the wrapped function."""
        return self.fn(site, loc, hyper)


class PerSitePrior(Prior):
    """A different prior per router, keyed by router name (``"layers.1.moe.router"``)."""

    config_type = "per-site"

    def __init__(self, priors: Mapping[str, Prior], default: Prior) -> None:
        self.priors, self.default = dict(priors), default

    def to_config(self) -> dict:
        """``{"type": "per-site", "default": ..., "sites": {name: ...}}``; custom if any part is."""
        parts = {k: v.to_config() for k, v in self.priors.items()}
        default = self.default.to_config()
        if any(p["type"] == "custom" for p in (default, *parts.values())):
            return super().to_config()
        return {"type": "per-site", "default": default, "sites": parts}

    @classmethod
    def from_config(cls, spec) -> PerSitePrior:
        """Rebuild from :meth:`to_config`."""
        sites = {k: prior_from_config(v) for k, v in spec["sites"].items()}
        return cls(sites, prior_from_config(spec["default"]))

    def _for(self, site: RouterSite) -> Prior:
        return self.priors.get(site.name, self.default)

    def prior_dist(self, site, loc: torch.Tensor, hyper):
        """Delegate to the site's prior."""
        return self._for(site).prior_dist(site, loc, hyper)

    def hyper_priors(self, site):
        """Delegate to the site's prior."""
        return self._for(site).hyper_priors(site)


def gaussian_scale(prior: Prior, site: RouterSite) -> float | None:
    """The Gaussian scale ``s`` of ``prior`` at ``site``, or None when it is not a Gaussian prior.

    Parameters
    ----------
    prior : Prior
        A :class:`GaussianPrior`, a :class:`PerSitePrior` of them, or any other prior.
    site : RouterSite
        The router.

    Returns
    -------
    float or None
    """
    if isinstance(prior, PerSitePrior):
        return gaussian_scale(prior._for(site), site)
    return prior.scale if isinstance(prior, GaussianPrior) else None


def as_prior(prior, default: Prior) -> Prior:
    """Accept a :class:`Prior`, a positive number (Gaussian scale), a dict or a callable.

    Parameters
    ----------
    prior : Prior, float, dict, callable or None
        ``None`` gives ``default``; a dict maps router names to any of these shorthands.
    default : Prior
        The family's default prior.

    Returns
    -------
    Prior
    """
    if prior is None:
        return default
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, int | float) and not isinstance(prior, bool):
        return GaussianPrior(prior)
    if isinstance(prior, Mapping):
        return PerSitePrior({k: as_prior(v, default) for k, v in prior.items()}, default)
    if callable(prior):
        return CallablePrior(prior)
    raise TypeError(
        f"prior={prior!r}: pass a Prior, a positive scale, a dict keyed by router name, "
        "or a callable (site, loc, hyper) -> Distribution"
    )
