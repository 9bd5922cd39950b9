"""Stochastic expert selection: K experts without replacement by Gumbel-top-K.

Adding independent Gumbel(0, 1) noise to ``logits / T`` and taking the top K draws K experts
without replacement from ``softmax(logits / T)`` (Kool, van Hoof & Welling, 2019, "Stochastic
Beams and Where to Find Them", Eq. 4). Unlike the thesis code (a hard Gumbel-softmax one-hot
followed by top-K, where only one index is a genuine draw) all K indices here are genuine draws.
"""

from __future__ import annotations

import itertools

import torch

from vmoer_ppl.nn.gates import check_top_k


def gumbel_topk(scores: torch.Tensor, k: int, gumbel: torch.Tensor) -> torch.Tensor:
    """Select K experts without replacement from ``softmax(scores)``.

    Parameters
    ----------
    scores : torch.Tensor
        `(..., E)` tempered logits ``l / T``.
    k : int
        Number of experts to draw.
    gumbel : torch.Tensor
        `(..., E)` standard Gumbel noise, broadcastable to ``scores``.

    Returns
    -------
    torch.Tensor
        `(..., K)` int64 indices, in the order they were drawn.
    """
    check_top_k(k, scores.shape[-1])
    return torch.topk(scores + gumbel, k, dim=-1).indices  # (..., K)


def subset_probabilities(probs: torch.Tensor, k: int) -> dict[frozenset[int], float]:
    """Exact probability of each K-subset under sequential sampling without replacement.

    Parameters
    ----------
    probs : torch.Tensor
        `(E,)` a probability vector; small E only (enumerates all ordered K-tuples).
    k : int
        Subset size.

    Returns
    -------
    dict
        ``frozenset`` of expert indices -> probability; values sum to one.
    """
    p = probs.tolist()
    out: dict[frozenset[int], float] = {}
    for order in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for i in order:
            prob *= p[i] / left
            left -= p[i]
        key = frozenset(order)
        out[key] = out.get(key, 0.0) + prob
    return out
