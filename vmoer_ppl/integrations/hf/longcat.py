"""LongCat-Flash: ``model.layers[i].mlp.router`` (``LongcatFlashTopkRouter``, map ``.classifier``).

Source: transformers 5.24 ``models/longcat_flash/modeling_longcat_flash.py``,
``LongcatFlashTopkRouter.forward``: logits ``h Wᵀ`` in float32 (the classifier's bias, if any,
is not used), ``p = softmax(l)``, top-K of ``p + e_score_correction_bias`` (unsorted), weights
``p`` of the selected × ``routed_scaling_factor`` (not renormalised), in float32. The router
chooses among ``n_routed_experts`` + ``zero_expert_num`` experts: the zero-computation experts
(identity outputs in ``LongcatFlashExperts``) are routing choices like the others, so the site has
E = n_routed + zero experts, as the weight has. This is
:class:`~vmoer_ppl.nn.rules.GroupLimitedSoftmaxRule` with one group.
"""

from __future__ import annotations

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.rules import GroupLimitedSoftmaxRule


class LongcatFlashAdapter(HFAdapter):
    """LongCat-Flash routers: softmax, biased top-K selection, scaled weights; zero experts."""

    model_types = ("longcat_flash",)
    router_suffix = ".mlp.router"
    linear_attr = "classifier"
    linear_bias = False  # upstream: F.linear(h, classifier.weight), its bias unused
    marker_attrs = ("e_score_correction_bias",)

    def gate_rule(self, router, config):
        """One-group :class:`GroupLimitedSoftmaxRule` with the router's correction bias."""
        return GroupLimitedSoftmaxRule(
            router.e_score_correction_bias,
            n_group=1,
            topk_group=1,
            norm_topk_prob=False,
            routed_scaling_factor=router.routed_scaling_factor,
        )
