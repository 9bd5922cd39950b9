"""Inkling: ``model.layers[i].mlp.gate`` (``InklingTopkRouter``), shared experts in its weight.

Source: transformers 5.24 ``models/inkling/modeling_inkling.py``, ``InklingTopkRouter.forward``:
logits ``h Wᵀ`` in float32 over ``n_routed_experts + n_shared_experts`` rows (the shared
experts' rows last); top-K of ``sigmoid(l) + e_score_correction_bias`` over the routed experts
(unsorted); the K selected and the shared logits weighted together, ``softmax(logsigmoid(·))``,
× ``route_scale × global_scale``; returned in the hidden states' dtype as the 4-tuple
``(routed logits, K weights, K experts, shared gammas)``, which ``InklingMoE`` hands to the
routed and the shared experts. The site's E counts the shared experts: their logits are
Bayesian like the others and move the shared gammas
(:class:`~vmoer_ppl.nn.rules.SharedSigmoidRule`).
"""

from __future__ import annotations

import functools

import torch

from vmoer_ppl.integrations.hf.base import HFAdapter, patch_router
from vmoer_ppl.nn.rules import SharedSigmoidRule


class InklingAdapter(HFAdapter):
    """Inkling routers: sigmoid top-K, weights normalised with the shared experts', 4-tuple."""

    model_types = ("inkling_text", "inkling_mm_model")
    router_suffix = ".mlp.gate"
    weights_in_float32 = False  # upstream: topk_weights.to(hidden_states.dtype)
    marker_attrs = ("n_shared_experts", "global_scale", "e_score_correction_bias")

    def gate_rule(self, router, config):
        """:class:`SharedSigmoidRule` with the router's bias, shared count and scales."""
        bias, shared = router.e_score_correction_bias, router.n_shared_experts
        return SharedSigmoidRule(bias, shared, router.route_scale, router.global_scale)

    @staticmethod
    def pack_shared(logits, weights, experts, *, n_shared: int):
        """``(routed logits (N, E - S), weights (N, K), experts (N, K), shared gammas (N, S))``."""
        k = weights.shape[-1] - n_shared
        routed = logits[:, : logits.shape[-1] - n_shared]
        gammas = weights[:, k:].contiguous()
        return routed, weights[:, :k].contiguous(), experts[:, :k].contiguous(), gammas

    def patch(self, model: torch.nn.Module, name: str, router: torch.nn.Module, rule) -> None:
        """Patch with a 4-tuple output split at this router's shared-expert count."""
        pack = functools.partial(self.pack_shared, n_shared=router.n_shared_experts)
        patch_router(router, rule, self.weights_dtype, pack)
