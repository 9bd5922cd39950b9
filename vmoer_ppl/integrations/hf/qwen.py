"""Qwen2-MoE, Qwen3-MoE and OLMoE: ``model.layers[i].mlp.gate``.

Source: transformers 5.23 ``models/qwen2_moe/modeling_qwen2_moe.py`` ``Qwen2MoeTopKRouter.forward``
(identical in ``qwen3_moe`` and ``olmoe``): softmax over E in float32, top-K, renormalised only if
``config.norm_topk_prob``, gate values cast back to the logits' dtype. Qwen2-MoE's shared expert
(``mlp.shared_expert`` × sigmoid(``mlp.shared_expert_gate``)) lives in the block and is untouched.
"""

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.gates import GateRule


class QwenMoeAdapter(HFAdapter):
    """Qwen-style routers: ``softmax-topk``, renormalised when ``norm_topk_prob``."""

    model_types = ("qwen2_moe", "qwen3_moe", "olmoe")
    router_suffix = ".mlp.gate"
    weights_in_float32 = False  # upstream: router_top_value.to(router_logits.dtype)

    def gate_rule(self, router, config):
        """``softmax-topk-norm`` if ``router.norm_topk_prob`` else ``softmax-topk``."""
        return GateRule.SOFTMAX_TOPK_NORM if router.norm_topk_prob else GateRule.SOFTMAX_TOPK
