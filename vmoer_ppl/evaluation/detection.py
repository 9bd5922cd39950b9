"""OOD detection beyond AUROC (AUPRC, FPR at 95% TPR) and selective prediction (AURC)."""

from __future__ import annotations

import torch


def ood_scored(
    id_scores: torch.Tensor, ood_scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One detection problem from ID and OOD scores: scores `(N + M,)` and ``is_ood`` `(N + M,)`.

    Parameters
    ----------
    id_scores : torch.Tensor
        `(N,)` uncertainty scores of the in-distribution questions.
    ood_scores : torch.Tensor
        `(M,)` the same score on the out-of-distribution questions (the positives).

    Returns
    -------
    tuple of torch.Tensor
        The scores concatenated, and the bool labels (True: OOD).
    """
    is_ood = torch.cat([torch.zeros(len(id_scores)), torch.ones(len(ood_scores))]).bool()
    return torch.cat([id_scores, ood_scores]), is_ood


def _sorted(scores: torch.Tensor, is_positive: torch.Tensor):
    order = torch.argsort(scores.double(), descending=True, stable=True)
    s, y = scores.double()[order], is_positive.bool()[order].double()
    last = torch.cat([s[1:] != s[:-1], torch.tensor([True])])  # the end of each tie group
    return torch.cumsum(y, 0)[last], torch.cumsum(1 - y, 0)[last]


def roc_curve(scores: torch.Tensor, is_positive: torch.Tensor):
    """False- and true-positive rates over every threshold, `(N_distinct + 1,)` each, from 0."""
    tp, fp = _sorted(scores, is_positive)
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat([zero, fp / max(fp[-1].item(), 1)]), torch.cat([zero, tp / max(tp[-1], 1)])


def auprc(scores: torch.Tensor, is_positive: torch.Tensor) -> float:
    """Average precision, positives = OOD: ``sum_k (R_k - R_{k-1}) P_k`` (scikit-learn's form).

    Parameters
    ----------
    scores : torch.Tensor
        `(N,)` higher = more likely positive.
    is_positive : torch.Tensor
        `(N,)` bool.

    Returns
    -------
    float
    """
    tp, fp = _sorted(scores, is_positive)
    if tp[-1] == 0:
        raise ValueError("AUPRC needs at least one positive example")
    recall, precision = tp / tp[-1], tp / (tp + fp)
    steps = torch.diff(torch.cat([torch.zeros(1, dtype=recall.dtype), recall]))
    return (steps * precision).sum().item()


def fpr_at_tpr(scores: torch.Tensor, is_positive: torch.Tensor, tpr: float = 0.95) -> float:
    """False-positive rate at the first threshold whose true-positive rate reaches ``tpr``."""
    tp, fp = _sorted(scores, is_positive)
    n_pos, n_neg = tp[-1].item(), fp[-1].item()
    if n_pos == 0 or n_neg == 0:
        raise ValueError("FPR@TPR needs both positive and negative examples")
    k = int(torch.nonzero(tp / n_pos >= tpr - 1e-12)[0])
    return (fp[k] / n_neg).item()


def risk_coverage(
    probs: torch.Tensor, labels: torch.Tensor, confidence: torch.Tensor | None = None
):
    """Selective prediction: error rate of the most confident fraction of answers, at each coverage.

    Parameters
    ----------
    probs : torch.Tensor
        `(N, C)` answer probabilities.
    labels : torch.Tensor
        `(N,)` answers.
    confidence : torch.Tensor, optional
        `(N,)` what to sort by (default: the max probability).

    Returns
    -------
    tuple of torch.Tensor
        ``coverage`` and ``risk``, `(N,)` each: keeping the k most confident answers.
    """
    conf = probs.max(-1).values if confidence is None else confidence
    wrong = (probs.argmax(-1) != labels).double()[torch.argsort(conf, descending=True, stable=True)]
    k = torch.arange(1, len(wrong) + 1, dtype=torch.float64)
    return k / len(wrong), torch.cumsum(wrong, 0) / k


def aurc(
    probs: torch.Tensor, labels: torch.Tensor, confidence: torch.Tensor | None = None
) -> float:
    """Area under the risk-coverage curve: mean selective risk over the N coverages."""
    return risk_coverage(probs, labels, confidence)[1].mean().item()
