"""DBRX: ``transformer.blocks[i].ffn.router`` (``DbrxRouter``, its ``nn.Linear`` in ``.layer``).

Source: transformers 5.24 ``models/dbrx/modeling_dbrx.py``. ``DbrxRouter.forward`` returns only
the logits ``h Wᵀ`` (input jitter in training only); the selection happens in the FFN:
``DbrxFFN.route_tokens_to_experts`` takes the softmax over E in the logits' dtype, the top K, and
divides the K values by their p-norm (``ffn_config.moe_normalize_expert_weights``: 1 in the
released checkpoints, i.e. renormalised; None: not normalised); ``DbrxExperts`` mixes them.
Because the router's output carries no selection, the adapter patches the FFN's forward and
gives the router the site interface (``weight`` read from ``.layer``, ``top_k`` from the FFN).
"""

from __future__ import annotations

import torch
from torch import nn

from vmoer_ppl.integrations.hf.base import HFAdapter, router_logits
from vmoer_ppl.nn.gates import GateRule


class DbrxAdapter(HFAdapter):
    """DBRX routers: ``softmax-topk-norm`` (p = 1) or ``softmax-topk`` (no normalisation)."""

    model_types = ("dbrx",)
    router_suffix = ".ffn.router"
    linear_attr = "layer"
    weights_in_float32 = False  # upstream: softmax(..., dtype=router_logits.dtype)

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def gate_rule(self, router, config):
        """Softmax, top-K, divided by the p-norm of the K values (p = 1 or none)."""
        p = config.ffn_config.moe_normalize_expert_weights
        if p is None:
            return GateRule.SOFTMAX_TOPK
        if float(p) == 1.0:
            return GateRule.SOFTMAX_TOPK_NORM
        self.reasons[type(router).__name__] = (
            f"DBRX with moe_normalize_expert_weights={p}: only 1 (renormalised, the released "
            "checkpoints) or None is supported"
        )
        return None

    def patch(self, model: nn.Module, name: str, router: nn.Module, rule) -> None:
        """Give the router the site interface and patch its FFN."""
        ffn = model.get_submodule(name.rsplit(".", 1)[0])
        self.expose_linear(router)  # W_r read as router.weight, stored once
        router.top_k = ffn.top_k
        patch_ffn(ffn, router, rule)


def patch_ffn(ffn: nn.Module, router: nn.Module, rule) -> None:
    """Route ``ffn``'s tokens through ``router.routing_fn`` when one is installed.

    Parameters
    ----------
    ffn : nn.Module
        A ``DbrxFFN`` (``router``, ``experts``, ``top_k``).
    router : nn.Module
        Its router, which receives the ``routing_fn`` slot.
    rule : GateRule
        The exact gate rule.
    """
    original = ffn.forward

    def forward(hidden_states: torch.Tensor) -> torch.Tensor:
        fn = router.routing_fn
        if fn is None:  # deterministic: the untouched upstream code
            return original(hidden_states)
        h = hidden_states.reshape(-1, hidden_states.shape[-1])  # (B*T, D)
        dt = torch.promote_types(router.weight.dtype, torch.float32)
        out = fn(h, router_logits(router, h.to(dt)))
        n = h.shape[0]
        weights = out.weights.reshape(n, -1).to(hidden_states.dtype)  # (B*T, K)
        return ffn.experts(hidden_states, out.experts.reshape(n, -1), weights)

    ffn.forward = forward
    router.routing_fn = None
    router.gate_rule = rule
    router._vmoer_router = True
