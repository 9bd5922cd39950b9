"""Gate rules of real MoE models: how the K selected experts are weighted.

Each rule reproduces one transformers router (see ``../shared/HF_MOE_NOTES.md``):

=====================  =================================================  =====================
rule                   weights of the selected experts                    models
=====================  =================================================  =====================
``topk-softmax``       softmax over the K selected logits                 GraniteMoe, GPT-OSS
``softmax-topk``       softmax over all E, the K selected, as they are    Qwen2/3-MoE, OLMoE
``softmax-topk-norm``  softmax over all E, selected, renormalised to 1    Mixtral, norm_topk
``sigmoid-topk-norm``  sigmoid scores of the selected, renormalised       DeepSeek-V3 (no group)
``sigmoid-topk``       sigmoid scores of the selected, as they are        Llama-4
=====================  =================================================  =====================

Selection is always the top-K of the logits (all four score maps are monotone), unless a caller
passes its own ``experts`` (stochastic selection, see :mod:`vmoer_ppl.nn.selection`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import torch

from vmoer_ppl.nn.outputs import RoutingOutput


class GateRule(str, Enum):
    """How the gate values of the selected experts are computed from router logits."""

    TOPK_SOFTMAX = "topk-softmax"
    """Top-K on the logits, then softmax over the K selected logits (GraniteMoe)."""
    SOFTMAX_TOPK = "softmax-topk"
    """Softmax over all E, then the K largest probabilities, not renormalised (Qwen2-MoE)."""
    SOFTMAX_TOPK_NORM = "softmax-topk-norm"
    """Softmax over all E, the K largest, renormalised to sum to one (Mixtral)."""
    SIGMOID_TOPK_NORM = "sigmoid-topk-norm"
    """Sigmoid scores, the K largest, renormalised to sum to one (DeepSeek-V3 without groups)."""
    SIGMOID_TOPK = "sigmoid-topk"
    """Sigmoid scores of the K largest logits, not renormalised (Llama-4)."""


#: Rules whose scores are sigmoids: MC and analytic prediction average sigmoid scores for these.
SIGMOID_RULES = frozenset({GateRule.SIGMOID_TOPK_NORM, GateRule.SIGMOID_TOPK})


def _topk_softmax(logits: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.gather(-1, experts), dim=-1)  # (..., K)


def _softmax_topk(logits: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1).gather(-1, experts)  # (..., K)


def _softmax_topk_norm(logits: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    w = _softmax_topk(logits, experts)  # (..., K)
    return w / w.sum(-1, keepdim=True)


def _sigmoid_topk_norm(logits: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    w = torch.sigmoid(logits).gather(-1, experts)  # (..., K)
    return w / w.sum(-1, keepdim=True)


def _sigmoid_topk(logits: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits.gather(-1, experts))  # (..., K)


GATE_RULES: dict[GateRule, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    GateRule.TOPK_SOFTMAX: _topk_softmax,
    GateRule.SOFTMAX_TOPK: _softmax_topk,
    GateRule.SOFTMAX_TOPK_NORM: _softmax_topk_norm,
    GateRule.SIGMOID_TOPK_NORM: _sigmoid_topk_norm,
    GateRule.SIGMOID_TOPK: _sigmoid_topk,
}


def as_gate_rule(rule: GateRule | str) -> GateRule:
    """Parse a gate rule, with an error that lists the known ones.

    Parameters
    ----------
    rule : GateRule or str
        A member or its string value, e.g. ``"topk-softmax"``.

    Returns
    -------
    GateRule
    """
    try:
        return GateRule(rule)
    except ValueError:
        known = ", ".join(repr(r.value) for r in GateRule)
        raise ValueError(f"unknown gate rule {rule!r}; known rules: {known}") from None


def check_top_k(k: int, num_experts: int) -> None:
    """Raise a clear error unless ``1 <= k <= num_experts``."""
    if not 1 <= k <= num_experts:
        raise ValueError(
            f"top_k={k} must be between 1 and num_experts={num_experts}; "
            "lower num_experts_per_tok or add experts"
        )


def selectable_experts(rule, num_experts: int) -> int:
    """How many of ``num_experts`` logits a top-K may choose among.

    All of them, unless the rule's last ones are always-on shared experts
    (:class:`~vmoer_ppl.nn.rules.SharedSigmoidRule`).
    """
    fn = getattr(rule, "selectable", None)
    return num_experts if fn is None else fn(num_experts)


def gate_weights(logits: torch.Tensor, experts: torch.Tensor, rule: GateRule | str) -> torch.Tensor:
    """Gate values of the selected experts under an architecture's rule.

    Parameters
    ----------
    logits : torch.Tensor
        `(..., E)` router logits.
    experts : torch.Tensor
        `(..., K)` int64 indices of the selected experts.
    rule : GateRule, str or rule object
        The architecture's gate rule.

    Returns
    -------
    torch.Tensor
        `(..., K)` gate values, in the dtype of ``logits``.
    """
    if hasattr(rule, "route"):
        return rule.route(logits, experts.shape[-1], experts).weights
    return GATE_RULES[as_gate_rule(rule)](logits, experts)


def route(
    logits: torch.Tensor,
    k: int,
    rule,
    *,
    experts: torch.Tensor | None = None,
) -> RoutingOutput:
    """Deterministic top-K routing, or gating of a given selection.

    Parameters
    ----------
    logits : torch.Tensor
        `(..., E)` router logits.
    k : int
        Number of experts per token (``num_experts_per_tok``).
    rule : GateRule, str or rule object
        The architecture's gate rule, or an object with ``route(logits, k, experts)`` such as
        :class:`~vmoer_ppl.nn.rules.GroupLimitedSigmoidRule`.
    experts : torch.Tensor, optional
        `(..., K)` a selection made elsewhere (e.g. Gumbel-top-K); default: top-K of ``logits``.

    Returns
    -------
    RoutingOutput
        ``logits`` `(..., E)`, ``weights`` `(..., K)`, ``experts`` `(..., K)`.

    Examples
    --------
    >>> out = route(torch.tensor([[0.0, 2.0, 1.0]]), k=2, rule="topk-softmax")
    >>> out.experts.tolist()
    [[1, 2]]
    """
    check_top_k(k, logits.shape[-1])
    if hasattr(rule, "route"):
        return rule.route(logits, k, experts)
    if experts is None:
        experts = torch.topk(logits, k, dim=-1).indices  # (..., K)
    return RoutingOutput(logits, gate_weights(logits, experts, rule), experts)
