"""Calibration beyond ECE/MCE: adaptive ECE, Brier score, reliability-diagram data."""

from __future__ import annotations

import torch


def brier(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Brier score ``mean_n sum_c (p_nc - 1[y_n = c])^2``; probs `(N, C)`, labels `(N,)`."""
    onehot = torch.nn.functional.one_hot(labels, probs.shape[-1]).to(probs)
    return ((probs - onehot) ** 2).sum(-1).mean().item()


def adaptive_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> float:
    """ECE over equal-mass bins of the confidence (Nguyen & O'Connor 2015; Nixon et al. 2019).

    Parameters
    ----------
    probs : torch.Tensor
        `(N, C)` answer probabilities.
    labels : torch.Tensor
        `(N,)` answers.
    n_bins : int
        Number of bins, each holding N / n_bins questions (sorted by confidence).

    Returns
    -------
    float
    """
    conf, pred = probs.max(-1)
    correct = (pred == labels).double()
    order = conf.argsort()
    total = 0.0
    for idx in order.tensor_split(n_bins):
        if len(idx):
            gap = (correct[idx].mean() - conf[idx].double().mean()).abs().item()
            total += len(idx) / len(conf) * gap
    return total


def reliability_data(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> dict:
    """Per-bin confidence, accuracy and count over equal-width ``(lo, hi]`` bins (PAPER.md §5).

    Returns
    -------
    dict
        ``edges`` `(n_bins + 1,)`, ``confidence``, ``accuracy`` (NaN in empty bins), ``count``,
        each `(n_bins,)`, as lists.
    """
    conf, pred = probs.max(-1)
    correct = (pred == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    idx = (torch.bucketize(conf.double(), edges, right=False) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).double()
    return {
        "edges": edges.tolist(),
        "confidence": (torch.bincount(idx, conf.double(), minlength=n_bins) / count).tolist(),
        "accuracy": (torch.bincount(idx, correct, minlength=n_bins) / count).tolist(),
        "count": count.long().tolist(),
    }
