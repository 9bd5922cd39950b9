"""Generic detection for MoE architectures without a dedicated adapter.

A router is recognised as a module below ``model.layers`` whose ``weight`` has shape
``(num_experts, hidden_size)`` (the expert count read from the usual config names) and whose
forward returns the ``(logits, weights, experts)`` triple. Its gate rule is not guessed: each
known rule is tried against the router's own output on random inputs, and the one that
reproduces it exactly is used; if none does, the model is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.gates import GateRule, route

EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


def num_experts(config) -> int | None:
    """The expert count of a config, under any of the usual names."""
    for key in EXPERT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 1:
            return value
    return None


class GenericAdapter(HFAdapter):
    """Routers found by shape; gate rule identified by matching the router's own output."""

    weights_in_float32 = True

    def routers(self, model):
        """Modules with an `(E, D)` weight and a ``top_k`` that return a 3-tuple."""
        E, D = num_experts(model.config), getattr(model.config, "hidden_size", None)
        if E is None or D is None:
            return []
        return [
            (n, m)
            for n, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.Tensor)
            and tuple(m.weight.shape) == (E, D)
            and isinstance(getattr(m, "top_k", None), int)
            and not isinstance(m, nn.Embedding)
        ]

    def gate_rule(self, router, config):
        """The known rule that reproduces the router's weights and selection exactly."""
        g = torch.Generator().manual_seed(0)
        h = torch.randn(64, router.weight.shape[1], generator=g).to(router.weight)
        with torch.no_grad():
            out = router(h)
            if not (isinstance(out, tuple) and len(out) == 3):
                return None
            logits = nn.functional.linear(h.float(), router.weight.float())
            for rule in GateRule:
                ours = route(logits, router.top_k, rule)
                if torch.equal(
                    ours.experts.sort(-1).values, out[2].sort(-1).values
                ) and torch.allclose(
                    ours.weights.gather(-1, ours.experts.argsort(-1)),
                    out[1].float().gather(-1, out[2].argsort(-1)),
                    atol=1e-5,
                ):
                    return rule
        return None
