"""JetMoE: ``model.layers[i].mlp.router`` and ``model.layers[i].self_attention.experts.router``.

Source: transformers 5.24 ``models/jetmoe/modeling_jetmoe.py``, ``JetMoeTopKGating.forward``
(its map in ``.layer``): logits ``h Wᵀ`` in float32, the top-K logits, softmax over those K, cast
to the hidden states' dtype; it returns the grouping the experts need, ``(index_sorted_experts,
batch_index, batch_gates, expert_size, logits)``. The same gating routes the MLP experts
(``JetMoeMoE``) and the attention experts (``JetMoeMoA``, query/output projections): both are
router sites.
"""

from __future__ import annotations

import torch

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.gates import GateRule


def grouped(logits: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor):
    """JetMoE's router output from a selection, as ``JetMoeTopKGating`` computes it.

    Parameters
    ----------
    logits : torch.Tensor
        `(N, E)`.
    weights, experts : torch.Tensor
        `(N, K)` gate values and expert indices.

    Returns
    -------
    tuple
        ``(index_sorted_experts (N·K,), batch_index (N·K,), batch_gates (N·K,),
        expert_size (list of E ints), logits (N, E))``.
    """
    top_k = experts.shape[1]
    expert_size = torch.bincount(experts.flatten(), minlength=logits.shape[1]).tolist()
    _, index_sorted = experts.flatten().sort(0)
    batch_index = index_sorted.div(top_k, rounding_mode="trunc")
    return index_sorted, batch_index, weights.flatten()[index_sorted], expert_size, logits


class JetMoeAdapter(HFAdapter):
    """JetMoE routers (MLP and attention experts): ``topk-softmax``, grouped output."""

    model_types = ("jetmoe",)
    router_suffix = ".router"
    linear_attr = "layer"
    marker_attrs = ("top_k",)
    weights_in_float32 = False  # upstream: softmax(...).type_as(hidden_states)

    pack = staticmethod(grouped)

    def gate_rule(self, router, config):
        """Softmax over the K largest logits."""
        return GateRule.TOPK_SOFTMAX
