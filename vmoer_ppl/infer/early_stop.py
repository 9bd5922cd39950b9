"""Early stopping on validation NLL (VMoER App. D.2): the metric and the patience tracker."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from vmoer_ppl.data.tensors import batches, length_order
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.infer.sharding import all_reduce_sum, world


@torch.no_grad()
def validation_nll(
    model,
    guide,
    data: Mapping[str, torch.Tensor],
    *,
    num_samples: int = 8,
    batch_size: int = 16,
    seed: int = 0,
    mode: str = "mc",
    link: str = "second-order",
) -> float:
    """Mean answer NLL under MC-averaged (or closed-form) routing, with its own random stream.

    The draws come from a forked RNG, seeded per batch from ``seed`` and the batch's index, so
    validating neither perturbs the training stream nor varies between calls with the same guide,
    and under ``torchrun`` each process validates every ``world_size``-th batch (the longest
    first, so the shares balance) and the sums are all-reduced: one process's value (to the order
    of a float64 sum) in 1/world_size of the time.

    Parameters
    ----------
    model : RouterModel
        The Bayesian router model.
    guide : RouterGuide
        Its guide.
    data : mapping of str to torch.Tensor
        Validation questions: the network's inputs and ``labels`` `(N,)`.
    num_samples : int
        S, routing draws per router.
    batch_size : int
        Questions per forward.
    seed : int
        Seed of the validation draws.
    mode, link : str
        Prediction mode (``"mc"`` or ``"analytic"``) and link approximation, as in
        :func:`~vmoer_ppl.infer.predictive.predict`.

    Returns
    -------
    float
        ``-mean_n log p(y_n | x_n)``.
    """
    rank, size = world()
    total, n = 0.0, 0
    with torch.random.fork_rng():
        for i, b in enumerate(batches(data, batch_size, length_order(data))):
            if i % size != rank:  # under torchrun each process validates every size-th batch
                continue
            torch.manual_seed(batch_seed(seed, i))  # the same draws however the batches split
            labels = b.pop("labels")
            probs = predict(model, guide, mode=mode, num_samples=num_samples, link=link, **b)
            probs = probs.probs
            total -= probs.gather(-1, labels[:, None]).clamp_min(1e-12).log().sum().item()
            n += len(labels)
    return all_reduce_sum(total) / all_reduce_sum(float(n))


def batch_seed(seed: int, index: int) -> int:
    """Seed of validation batch ``index`` (its draws do not depend on the batches before it)."""
    return (seed * 1_000_003 + index) % 2**63


@dataclass
class EarlyStopping:
    """Keeps the best guide state seen at validation and counts validations without improvement.

    Attributes
    ----------
    patience : int or None
        Validations without improvement before stopping; ``None`` never stops.
    best : float
        Lowest validation NLL so far.
    best_step : int
        Step at which it was reached.
    best_state : dict or None
        The guide's ``state_dict`` then (a deep copy).
    bad : int
        Validations since the last improvement.
    history : list of (int, float)
        Every (step, validation NLL).
    """

    patience: int | None = None
    best: float = math.inf
    best_step: int = -1
    best_state: dict | None = None
    bad: int = 0
    history: list = field(default_factory=list)

    def update(self, step: int, value: float, guide: torch.nn.Module) -> bool:
        """Record a validation; returns True when training should stop."""
        self.history.append((step, value))
        if value < self.best:
            self.best, self.best_step, self.bad = value, step, 0
            self.best_state = copy.deepcopy(guide.state_dict())
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience

    def state_dict(self) -> dict:
        """Everything needed to continue after a restart."""
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""
        for k, v in state.items():
            setattr(self, k, v)
