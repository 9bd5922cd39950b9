"""Named outputs of the routing functions (STYLE rule 19)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RoutingOutput:
    """What a router hands to its experts.

    Attributes
    ----------
    logits : torch.Tensor
        `(..., E)` the logits the selection was made from (deterministic, sampled, or ``log p̄``).
    weights : torch.Tensor
        `(..., K)` gate values of the selected experts.
    experts : torch.Tensor
        `(..., K)` int64 indices of the selected experts.
    """

    logits: torch.Tensor
    weights: torch.Tensor
    experts: torch.Tensor
