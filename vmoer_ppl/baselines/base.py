"""Baseline routers behind the Bayesian routers' interface: ``q`` is the baseline's sampler.

A baseline is ``(model, guide)`` like a Bayesian family: ``model`` is the logit-space router model
(it supplies the network, the routers and the routing semantics) and ``guide`` returns, at each
router, a :class:`SampledLogits` "distribution" that draws the baseline's logit samples. Then
:func:`vmoer_ppl.predict`, the evaluation pipeline and the stability probe treat it exactly as
VMoER-MF/FC: S draws, MC-averaged routing (``log p̄`` through the gate rule), the same signals.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution, constraints


class SampledLogits(Distribution):
    """Logit draws from a sampler, with a known or estimated variance.

    Parameters
    ----------
    sampler : callable
        ``S -> (S, B, T, E)`` logit samples.
    mean : torch.Tensor
        `(B, T, E)` the logits' mean (or point value).
    variance : torch.Tensor, optional
        `(B, T, E)`; estimated from 64 draws when None.
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, sampler: Callable[[int], torch.Tensor], mean, variance=None) -> None:
        self.sampler, self._mean, self._variance = sampler, mean, variance
        super().__init__(mean.shape[:-1], mean.shape[-1:], validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        """`(B, T, E)`."""
        return self._mean

    @property
    def variance(self) -> torch.Tensor:
        """`(B, T, E)`."""
        if self._variance is None:
            self._variance = self.sampler(64).var(0)
        return self._variance

    def rsample(self, sample_shape=()) -> torch.Tensor:
        """`(*sample_shape, B, T, E)` (one leading dim supported)."""
        n = int(torch.Size(sample_shape).numel()) if len(sample_shape) else 1
        out = self.sampler(n)
        return out if len(sample_shape) else out[0]


class BaselineGuide(nn.Module):
    """Base of the baseline "guides": subclasses implement :meth:`logits_dist`.

    Parameters
    ----------
    model : RouterModel
        The logit-space router model of the Bayesian routers to replace.
    """

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.index = {s.name: i for i, s in enumerate(model.sites)}

    def logits_dist(self, site, u: torch.Tensor, l_det: torch.Tensor) -> SampledLogits:
        """The baseline's logit distribution at one router, batch `(B, T)`, event `(E,)`."""
        raise NotImplementedError

    def q_dists(self, site, u, l_det) -> dict:
        """``{"logits": SampledLogits}`` (the guide interface :func:`predict` uses)."""
        return {"logits": self.logits_dist(site, u, l_det)}

    def point_values(self, q) -> dict:
        """Point routing: the mean logits."""
        return {k: d.mean for k, d in q.items()}
