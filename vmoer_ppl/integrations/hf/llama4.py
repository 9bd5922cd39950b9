"""Llama-4: ``model.layers[i].feed_forward.router`` (``Llama4Router``, an ``nn.Linear``).

Source: transformers 5.24 ``models/llama4/modeling_llama4.py``, ``Llama4Router.forward``: logits
``h Wᵀ``, top-K, **sigmoid** of the selected logits (not renormalised), returned as a dense
`(N, E)` score matrix (0 for the unselected experts) together with the logits;
``Llama4TextMoe`` scales every expert's input by its score. The shared expert is untouched.
"""

import torch

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.gates import GateRule


class Llama4Adapter(HFAdapter):
    """Llama-4 routers: ``sigmoid-topk``, dense ``(scores, logits)`` output."""

    model_types = ("llama4", "llama4_text")
    router_suffix = ".feed_forward.router"
    weights_in_float32 = False  # upstream: sigmoid(...float()).to(router_scores.dtype)

    def gate_rule(self, router, config):
        """Sigmoid of the K largest logits."""
        return GateRule.SIGMOID_TOPK

    @staticmethod
    def pack(logits: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor):
        """``(scores (N, E), logits (N, E))``: the gate values scattered, 0 elsewhere."""
        scores = torch.zeros(logits.shape, dtype=weights.dtype, device=weights.device)
        return scores.scatter_(1, experts, weights), logits
