"""Core answer metrics: accuracy, NLL, ECE/MCE (PAPER.md §5) and AUROC.

Definitions follow the thesis code: confidence = max probability; 10 equal-width bins (lo, hi];
``ECE = Σ_b (n_b / N) |acc_b − conf_b|``; ``MCE = max_b |acc_b − conf_b|``.
"""

from __future__ import annotations

import torch


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of argmax answers equal to the labels; probs `(N, C)`, labels `(N,)`."""
    return (probs.argmax(-1) == labels).double().mean().item()


def nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """``−mean log max(p_y, 1e-9)``; probs `(N, C)`, labels `(N,)`."""
    p_y = probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return -p_y.clamp_min(1e-9).log().mean().item()


def calibration_errors(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10):
    """ECE and MCE with ``n_bins`` equal-width bins ``(lo, hi]``.

    Parameters
    ----------
    probs : torch.Tensor
        `(N, C)` answer probabilities.
    labels : torch.Tensor
        `(N,)` answers.
    n_bins : int
        Number of bins.

    Returns
    -------
    tuple of float
        ``(ece, mce)``.
    """
    conf, pred = probs.max(-1)
    correct = (pred == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype)
    ece, mce = 0.0, 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            gap = (correct[in_bin].mean() - conf[in_bin].double().mean()).abs().item()
            ece += in_bin.double().mean().item() * gap
            mce = max(mce, gap)
    return ece, mce


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of `(N,)` values, ties sharing their average rank; O(N log N).

    Same values as ``scipy.stats.rankdata(x, method="average")``.
    """
    sorted_x, order = x.sort()
    _, group, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).to(x.dtype)  # the last rank of each tie group
    ranks = torch.empty_like(x)
    ranks[order] = (ends - (counts.to(x.dtype) - 1) / 2)[group]
    return ranks


def auroc(scores: torch.Tensor, is_positive: torch.Tensor) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties).

    Parameters
    ----------
    scores : torch.Tensor
        `(N,)` higher = more likely positive (e.g. OOD).
    is_positive : torch.Tensor
        `(N,)` bool labels.

    Returns
    -------
    float
    """
    s = scores.double()
    ranks = average_ranks(s)
    pos = is_positive.bool()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both positive and negative examples")
    return ((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()
