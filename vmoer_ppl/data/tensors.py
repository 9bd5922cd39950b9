"""Row selection in data dicts: name -> tensor with the questions along the first dim."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch


def subset(
    data: Mapping[str, torch.Tensor | None], rows: Sequence[int] | torch.Tensor
) -> dict[str, torch.Tensor]:
    """The given rows of every tensor (``None`` entries dropped)."""
    idx = torch.as_tensor(rows)
    return {k: v[idx] for k, v in data.items() if v is not None}


def inputs_of(data: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's inputs of a data dict: every tensor but ``labels``."""
    return {k: v for k, v in data.items() if k != "labels"}


def batches(data: Mapping[str, torch.Tensor], size: int) -> Iterator[dict[str, torch.Tensor]]:
    """Consecutive slices of ``size`` rows."""
    n = len(next(iter(data.values())))
    for s in range(0, n, size):
        yield {k: v[s : s + size] for k, v in data.items()}
