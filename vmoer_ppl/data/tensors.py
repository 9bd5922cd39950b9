"""Row selection in data dicts: name -> tensor with the questions along the first dim."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch


def subset(
    data: Mapping[str, torch.Tensor | None], rows: Sequence[int] | torch.Tensor
) -> dict[str, torch.Tensor]:
    """The given rows of every tensor (``None`` entries dropped)."""
    idx = torch.as_tensor(rows)
    return {k: v[idx] for k, v in data.items() if v is not None}


def first_rows(data: Mapping[str, torch.Tensor | None], n: int) -> dict[str, torch.Tensor]:
    """The first ``n`` rows of every tensor (all of them when there are fewer)."""
    size = len(next(v for v in data.values() if v is not None))
    return subset(data, range(min(n, size)))


def inputs_of(data: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's inputs of a data dict: every tensor but ``labels``."""
    return {k: v for k, v in data.items() if k != "labels"}


def batches(
    data: Mapping[str, torch.Tensor], size: int, order: torch.Tensor | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of ``size`` rows: consecutive slices, or consecutive runs of ``order``.

    Parameters
    ----------
    data : mapping of str to torch.Tensor
        Tensors with N rows.
    size : int
        Rows per batch.
    order : torch.Tensor, optional
        `(N,)` permutation of the rows, e.g. :func:`length_order`; undo it on the concatenated
        outputs with :func:`unsort`.

    Yields
    ------
    dict of str to torch.Tensor
        At most ``size`` rows of every tensor.
    """
    n = len(next(iter(data.values())))
    for s in range(0, n, size):
        if order is None:
            yield {k: v[s : s + size] for k, v in data.items()}
        else:
            rows = order[s : s + size]
            yield {k: v[rows] for k, v in data.items()}


def n_batches(data: Mapping[str, torch.Tensor], size: int) -> int:
    """How many batches :func:`batches` yields: ``ceil(N / size)``."""
    return -(-len(next(iter(data.values()))) // size)


def token_counts(data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Real tokens per row `(N,)`: the sum of every ``*mask`` tensor (0 when there is none)."""
    n = len(next(iter(data.values())))
    counts = torch.zeros(n, dtype=torch.long)
    for k, v in data.items():
        if k.endswith("mask") and v is not None:
            counts += v.reshape(n, -1).long().sum(1)
    return counts


def length_order(data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Rows by decreasing :func:`token_counts` `(N,)`, ties in data order.

    Batching rows of similar length lets the heads drop the columns that are padding in the whole
    batch; the longest batch comes first, so a batch size that runs out of memory fails at once
    (as in lm-evaluation-harness).
    """
    return torch.argsort(token_counts(data), descending=True, stable=True)


def unsort(x: torch.Tensor, order: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Rows of ``x`` (N along ``dim``), computed in ``order``, back in data order."""
    return torch.empty_like(x).index_copy_(dim, order, x)


def batch_at(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Row indices of the minibatch at ``step``: a pure function of (seed, step), so resumable.

    Every row appears once per epoch (the last batch of an epoch is shorter); each epoch has its
    own seeded permutation.

    Parameters
    ----------
    step : int
        Optimiser step (0-based).
    n : int
        Data-set size N.
    batch_size : int
        Rows per batch.
    seed : int
        Seed of the permutations.

    Returns
    -------
    torch.Tensor
        `(batch_size,)` or shorter int64 row indices.
    """
    per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)[pos * batch_size : (pos + 1) * batch_size]
