"""Gemma-4: ``model.language_model.layers[i].router`` (``Gemma4TextRouter``, its map in ``.proj``).

Source: transformers 5.24 ``models/gemma4/modeling_gemma4.py``, ``Gemma4TextRouter.forward``: the
input is RMS-normalised (no weight), multiplied by the learned ``scale`` `(D,)` and by
``D^-1/2``; logits ``proj(·)``; softmax over E in float32, top-K (``config.top_k_experts``),
renormalised, then each selected weight multiplied by ``per_expert_scale[expert]``. It returns
``(softmax probabilities, weights, experts)``; ``Gemma4TextDecoderLayer`` uses the last two. The
router input ``u`` the guides see is the normalised, scaled hidden state (the input of ``proj``).
"""

from __future__ import annotations

import torch
from torch import nn

from vmoer_ppl.integrations.hf.base import HFAdapter, patch_router
from vmoer_ppl.nn.gates import GateRule


class Gemma4Adapter(HFAdapter):
    """Gemma-4 routers: ``softmax-topk-norm``, then the per-expert scale."""

    model_types = ("gemma4", "gemma4_text")
    router_suffix = ".router"
    linear_attr = "proj"
    marker_attrs = ("per_expert_scale",)
    weights_in_float32 = True  # upstream: float32 softmax times the per-expert scale

    def gate_rule(self, router, config):
        """Softmax, top-K, renormalised (the per-expert scale is applied after the rule)."""
        return GateRule.SOFTMAX_TOPK_NORM

    def patch(self, model: nn.Module, name: str, router: nn.Module, rule) -> None:
        """Give the router the site interface; its input transform and output contract."""
        self.expose_linear(router)  # W_r read as router.weight, stored once
        router.top_k = router.config.top_k_experts

        def prepare(h: torch.Tensor) -> torch.Tensor:
            """``norm(h) · scale · D^-1/2`` `(N, D)`, as upstream before ``proj``."""
            return router.norm(h) * router.scale.to(h.dtype) * router.scalar_root_size

        def pack(logits: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor):
            """``(softmax(logits) float32, weights · per_expert_scale[experts], experts)``."""
            probs = nn.functional.softmax(logits, dim=-1, dtype=torch.float32)
            return probs, weights * router.per_expert_scale[experts], experts

        patch_router(router, rule, self.weights_dtype, pack, prepare)
