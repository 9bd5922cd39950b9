"""Mixtral: ``model.layers[i].mlp.gate`` (``MixtralTopKRouter``).

Source: transformers 5.23 ``models/mixtral/modeling_mixtral.py``, ``MixtralTopKRouter.forward``:
softmax over E in float32, top-K, always renormalised; gate values float32.
"""

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.nn.gates import GateRule


class MixtralAdapter(HFAdapter):
    """Mixtral routers: ``softmax-topk-norm``."""

    model_types = ("mixtral",)
    router_suffix = ".mlp.gate"
    weights_in_float32 = True

    def gate_rule(self, router, config):
        """Softmax over E, top-K, renormalise (upstream: ``router_top_value /= ...sum``)."""
        return GateRule.SOFTMAX_TOPK_NORM
