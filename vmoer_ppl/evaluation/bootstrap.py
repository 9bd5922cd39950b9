"""Bootstrap 95% confidence intervals and paired comparisons over questions."""

from __future__ import annotations

from collections.abc import Callable

import torch


def _indices(n: int, n_boot: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(n, (n_boot, n), generator=gen)


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: torch.Tensor,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile bootstrap CI of ``metric(*arrays)``, resampling questions (rows) jointly.

    Parameters
    ----------
    metric : callable
        ``metric(*arrays) -> float``, e.g. ``accuracy(probs, labels)``.
    *arrays : torch.Tensor
        Per-question arrays, each `(N, ...)`.
    n_boot : int
        Bootstrap resamples.
    level : float
        Coverage of the interval.
    seed : int
        Seed of the resamples.

    Returns
    -------
    dict
        ``value`` (on the full data), ``lo``, ``hi``.
    """
    n = len(arrays[0])
    values = torch.tensor([metric(*(a[i] for a in arrays)) for i in _indices(n, n_boot, seed)])
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=values.dtype)
    lo, hi = torch.quantile(values, q).tolist()
    return {"value": metric(*arrays), "lo": lo, "hi": hi}


def paired_bootstrap(
    metric: Callable[..., float],
    a: tuple[torch.Tensor, ...],
    b: tuple[torch.Tensor, ...],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """CI of ``metric(*a) - metric(*b)`` with the same resampled questions on both sides.

    Returns
    -------
    dict
        ``diff``, ``lo``, ``hi`` and ``p_le_0``: the share of resamples with a difference <= 0
        (a one-sided bootstrap p-value for "a is larger").
    """
    n = len(a[0])
    diffs = torch.tensor(
        [metric(*(x[i] for x in a)) - metric(*(x[i] for x in b)) for i in _indices(n, n_boot, seed)]
    )
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=diffs.dtype)
    lo, hi = torch.quantile(diffs, q).tolist()
    return {
        "diff": metric(*a) - metric(*b),
        "lo": lo,
        "hi": hi,
        "p_le_0": (diffs <= 0).double().mean().item(),
    }
