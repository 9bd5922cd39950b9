"""A linear top-K router with a slot through which Bayesian routing is installed.

The router computes the deterministic logits ``l_det = u W_rᵀ`` and, unless a ``routing_fn`` is
installed, routes them with the architecture's gate rule. Bayesian models and guides install a
``routing_fn(u, l_det) -> RoutingOutput`` for the duration of one forward pass; the router weight
itself is never touched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vmoer_ppl.nn.gates import GateRule, as_gate_rule, check_top_k, route
from vmoer_ppl.nn.outputs import RoutingOutput

RoutingFn = Callable[[torch.Tensor, torch.Tensor], RoutingOutput]


class Router(nn.Module):
    """Linear router ``(…, D) -> (…, E)`` without bias, plus top-K gating.

    Parameters
    ----------
    hidden_size : int
        D, width of the router input.
    num_experts : int
        E.
    top_k : int
        K, experts per token (``num_experts_per_tok``).
    gate_rule : GateRule or str
        How the K selected experts are weighted.
    """

    def __init__(
        self, hidden_size: int, num_experts: int, top_k: int, gate_rule: GateRule | str
    ) -> None:
        super().__init__()
        check_top_k(top_k, num_experts)
        self.weight = nn.Parameter(torch.empty(num_experts, hidden_size))  # (E, D)
        nn.init.normal_(self.weight, std=hidden_size**-0.5)
        self.num_experts, self.top_k = num_experts, top_k
        self.gate_rule = as_gate_rule(gate_rule)
        self.routing_fn: RoutingFn | None = None

    def forward(self, u: torch.Tensor) -> RoutingOutput:
        """Route a batch of token inputs.

        Parameters
        ----------
        u : torch.Tensor
            `(B, T, D)` router input (after attention and norm).

        Returns
        -------
        RoutingOutput
            ``weights``/``experts`` `(B, T, K)`, ``logits`` `(B, T, E)`.
        """
        l_det = nn.functional.linear(u, self.weight)  # (B, T, E)
        if self.routing_fn is not None:
            return self.routing_fn(u, l_det)
        return route(l_det, self.top_k, self.gate_rule)
