"""Baselines without training: MC-dropout router and temperature sampling."""

from __future__ import annotations

import torch

from vmoer_ppl.baselines.base import BaselineGuide, SampledLogits


class MCDropoutGuide(BaselineGuide):
    """MC-dropout router (thesis MCDR): ``l = W_r (m ⊙ u) / (1 - p)``, ``m ~ Bernoulli(1 - p)``.

    Parameters
    ----------
    model : RouterModel
        Logit-space router model.
    p : float
        Dropout rate on the router input (thesis: 0.05).
    """

    def __init__(self, model, p: float = 0.05) -> None:
        super().__init__(model)
        if not 0 <= p < 1:
            raise ValueError(f"dropout rate p={p} must be in [0, 1)")
        self.p = p

    def logits_dist(self, site, u, l_det):
        """Dropout draws; variance ``p/(1-p) sum_d W_ed^2 u_d^2`` in closed form."""
        w = site.weight.to(u.dtype)  # (E, D)

        def sampler(n: int) -> torch.Tensor:
            keep = torch.rand((n, *u.shape), dtype=u.dtype, device=u.device) >= self.p
            return (keep * u / (1 - self.p)) @ w.T  # (S, B, T, E)

        var = self.p / (1 - self.p) * (u**2) @ (w**2).T
        return SampledLogits(sampler, l_det, var)


class TemperatureSamplingGuide(BaselineGuide):
    """Temperature sampling with a fixed T (thesis: 0.3): Gumbel-perturbed logits ``l/T + g``.

    Top-K of a draw is K experts sampled without replacement from ``softmax(l/T)``; MC averaging
    of S draws estimates how often each expert is selected.

    Parameters
    ----------
    model : RouterModel
        Logit-space router model.
    temperature : float
        T > 0.
    """

    def __init__(self, model, temperature: float = 0.3) -> None:
        super().__init__(model)
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0")
        self.temperature = temperature

    def logits_dist(self, site, u, l_det):
        """Gumbel-perturbed tempered logits; variance ``pi^2 / 6`` per expert."""
        scaled = l_det / self.temperature

        def sampler(n: int) -> torch.Tensor:
            g = torch.distributions.Gumbel(torch.zeros_like(scaled), torch.ones_like(scaled))
            return scaled + g.sample((n,))

        return SampledLogits(sampler, scaled, torch.full_like(scaled, torch.pi**2 / 6))
