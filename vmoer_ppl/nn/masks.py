"""Token positions from attention masks, for left or right padding."""

from __future__ import annotations

import torch


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token per row, for right or left padding; `(B, T) -> (B,)`."""
    T = mask.shape[1]
    return T - 1 - mask.flip(-1).long().argmax(-1)


def real_span(mask: torch.Tensor) -> tuple[int, int] | None:
    """``(start, stop)`` of the columns (last dim) where some row has a real token; None if none.

    ``mask`` is `(..., T)`; every leading dim counts as rows.
    """
    real = mask.bool().reshape(-1, mask.shape[-1]).any(0).nonzero()
    return None if len(real) == 0 else (int(real[0]), int(real[-1]) + 1)


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions of real tokens counted from 0 (left padding gets 0); `(B, T) -> (B, T)`."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0)
