"""GraniteMoe and GraniteMoeShared: ``model.layers[i].block_sparse_moe.router``.

Source: transformers 5.23 ``models/granitemoe/modeling_granitemoe.py``
``GraniteMoeTopKRouter.forward``: logits in float32, top-K on the raw logits, softmax over the K,
gate values cast to the hidden dtype. GraniteMoeShared's shared expert is ``layers[i].shared_mlp``
in the decoder layer, untouched.
"""

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.gates import GateRule


class GraniteMoeAdapter(HFAdapter):
    """Granite routers: ``topk-softmax`` (the paper's main architecture)."""

    model_types = ("granitemoe", "granitemoeshared")
    router_suffix = ".block_sparse_moe.router"
    weights_in_float32 = False  # upstream: .type_as(hidden_states)

    def gate_rule(self, router, config):
        """Top-K on logits, then softmax over the K selected."""
        return GateRule.TOPK_SOFTMAX
