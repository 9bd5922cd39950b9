"""DeepSeek-V3: ``model.layers[i].mlp.gate`` for ``i >= first_k_dense_replace``.

Source: transformers 5.23 ``models/deepseek_v3/modeling_deepseek_v3.py``
``DeepseekV3TopkRouter.forward``: float32 logits, sigmoid scores, selection on scores +
``e_score_correction_bias`` limited to ``topk_group`` of ``n_group`` groups, weights from the
unbiased scores, normalised (``norm_topk_prob``), × ``routed_scaling_factor``. The first
``first_k_dense_replace`` layers are dense MLPs (no router); shared experts are untouched.
"""

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.rules import GroupLimitedSigmoidRule


class DeepseekV3Adapter(HFAdapter):
    """DeepSeek-V3 routers: group-limited sigmoid routing."""

    model_types = ("deepseek_v3",)
    router_suffix = ".mlp.gate"
    weights_in_float32 = True

    def routers(self, model):
        """Routers of the MoE layers; dense layers have an MLP, not a gate."""
        return [(n, m) for n, m in super().routers(model) if hasattr(m, "e_score_correction_bias")]

    def gate_rule(self, router, config):
        """The router's own bias buffer and group settings, read at call time."""
        return GroupLimitedSigmoidRule(
            router.e_score_correction_bias,
            router.num_group,
            router.topk_group,
            router.norm_topk_prob,
            router.routed_scaling_factor,
        )
