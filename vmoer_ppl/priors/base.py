"""The prior interface: one abstract method, ``prior_dist``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import pyro.distributions as dist
import torch

from vmoer_ppl.sites import RouterSite

#: Serialisable prior classes by their ``config_type`` (filled by subclassing :class:`Prior`).
PRIOR_TYPES: dict[str, type[Prior]] = {}


class Prior(ABC):
    """A prior over one router latent, centred on a location the family supplies.

    The family decides what the location is: the deterministic logits ``l_det = u W_rᵀ``
    (logit routers), ``0`` for ``log T`` (temperature routers), or the pretrained ``W_r`` (weight
    routers). A prior returns a distribution whose ``batch_shape + event_shape`` equals
    ``loc.shape``; the model declares the trailing dims as event dims.

    Examples
    --------
    A Student-t prior, defined and used without touching library code:

    >>> class StudentTPrior(Prior):
    ...     def __init__(self, df=3.0, scale=1.0):
    ...         self.df, self.scale = df, scale
    ...
    ...     def prior_dist(self, site, loc, hyper):
    ...         return dist.StudentT(self.df, loc, self.scale)

    A prior that sets ``config_type`` and implements :meth:`to_config` / :meth:`from_config` is
    saved with an adapter and rebuilt on loading; any other is recorded by ``repr`` and must be
    passed to ``from_pretrained(prior=...)``.
    """

    #: Name of this prior in a saved adapter's JSON; ``None``: not serialisable (custom).
    config_type: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("config_type"):
            PRIOR_TYPES[cls.__dict__["config_type"]] = cls

    def to_config(self) -> dict:
        """JSON description of this prior: ``{"type": config_type, ...}``; custom by ``repr``."""
        return {"type": "custom", "repr": repr(self)}

    @classmethod
    def from_config(cls, spec: Mapping[str, Any]) -> Prior:
        """Rebuild from :meth:`to_config`'s output."""
        raise NotImplementedError(f"{cls.__name__} has no from_config")

    @abstractmethod
    def prior_dist(
        self, site: RouterSite, loc: torch.Tensor, hyper: Mapping[str, torch.Tensor]
    ) -> dist.Distribution:
        """Prior of the latent at ``site``.

        Parameters
        ----------
        site : RouterSite
            The router (name, layer, E, K).
        loc : torch.Tensor
            `(B, T, E)` for logits, `(B, T)` or `(B, T, E)` for log-temperatures, `(E, D)` for
            router weights.
        hyper : mapping of str to torch.Tensor
            Values of this prior's hyper-latents at ``site`` (see :meth:`hyper_priors`).

        Returns
        -------
        pyro.distributions.Distribution
            With ``batch_shape + event_shape == loc.shape``.
        """

    def hyper_priors(self, site: RouterSite) -> dict[str, dist.Distribution]:
        """Global hyper-latents of this prior at ``site`` (none by default).

        Parameters
        ----------
        site : RouterSite
            The router.

        Returns
        -------
        dict
            Latent key (site name suffix) -> distribution with empty batch shape.
        """
        return {}


def check_scale(scale: float | torch.Tensor, what: str = "prior scale") -> None:
    """Raise a clear error unless every entry of ``scale`` is finite and positive."""
    t = torch.as_tensor(scale, dtype=torch.float64)
    if not (torch.isfinite(t).all() and (t > 0).all()):
        raise ValueError(f"{what} must be finite and > 0, got {scale!r}; e.g. use 1.0")


def prior_from_config(spec: Mapping[str, Any]) -> Prior:
    """Rebuild a saved prior from its JSON description (:meth:`Prior.to_config`).

    Parameters
    ----------
    spec : mapping
        ``{"type": ..., ...}`` as written into an adapter's config.

    Returns
    -------
    Prior

    Raises
    ------
    ValueError
        For a custom prior, which the caller must pass again.
    """
    cls = PRIOR_TYPES.get(str(spec.get("type")))
    if cls is None:
        what = spec.get("repr", spec.get("type"))
        raise ValueError(f"the adapter was trained with a custom prior ({what}); pass prior=")
    return cls.from_config(spec)
