"""Answer likelihoods: one abstract method, ``forward(outputs, labels=None)``."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from vmoer_ppl.models.dims import batch_plate


class Likelihood(ABC):
    """Observation model of the network outputs; sample sites are named ``obs``."""

    @abstractmethod
    def forward(
        self,
        outputs: torch.Tensor,
        labels: torch.Tensor | None = None,
        plate: pyro.plate | None = None,
    ) -> torch.Tensor:
        """Observe (or simulate) labels.

        Parameters
        ----------
        outputs : torch.Tensor
            Network outputs.
        labels : torch.Tensor, optional
            Observations; ``None`` simulates them.
        plate : pyro.plate, optional
            The model's ``batch`` plate (dim -2); a new one when called on its own.

        Returns
        -------
        torch.Tensor
            The observed or simulated labels.
        """

    def __call__(self, outputs, labels=None, plate=None) -> torch.Tensor:
        """Call :meth:`forward`."""
        return self.forward(outputs, labels, plate)


class CategoricalLikelihood(Likelihood):
    """``obs ~ Categorical(logits=answer_logits)`` per question, scaled by ``1 / B``."""

    def forward(self, outputs, labels=None, plate=None) -> torch.Tensor:
        """Observe answers.

        Parameters
        ----------
        outputs : torch.Tensor
            `(B, C)` answer logits.
        labels : torch.Tensor, optional
            `(B,)` int64 answer indices.
        plate : pyro.plate, optional
            The ``batch`` plate.

        Returns
        -------
        torch.Tensor
            `(B,)` answers.
        """
        B, C = outputs.shape
        if labels is not None and (labels.shape != (B,) or labels.min() < 0 or labels.max() >= C):
            raise ValueError(f"labels must have shape ({B},) and values in [0, {C}); got {labels}")
        obs = None if labels is None else labels.unsqueeze(-1)  # (B, 1)
        with plate or batch_plate(B), poutine.scale(scale=1.0 / B):
            y = pyro.sample("obs", dist.Categorical(logits=outputs.unsqueeze(-2)), obs=obs)
        return y.squeeze(-1)  # (B,)
