"""Adapters keyed by ``config.model_type``; generic detection for the rest."""

from __future__ import annotations

from torch import nn

from vmoer_ppl.integrations.hf.base import HFAdapter
from vmoer_ppl.integrations.hf.dbrx import DbrxAdapter
from vmoer_ppl.integrations.hf.deepseek import DeepseekV3Adapter
from vmoer_ppl.integrations.hf.gemma4 import Gemma4Adapter
from vmoer_ppl.integrations.hf.generic import GenericAdapter
from vmoer_ppl.integrations.hf.granite import GraniteMoeAdapter
from vmoer_ppl.integrations.hf.inkling import InklingAdapter
from vmoer_ppl.integrations.hf.jetmoe import JetMoeAdapter
from vmoer_ppl.integrations.hf.llama4 import Llama4Adapter
from vmoer_ppl.integrations.hf.longcat import LongcatFlashAdapter
from vmoer_ppl.integrations.hf.mixtral import MixtralAdapter
from vmoer_ppl.integrations.hf.qwen import QwenMoeAdapter

ADAPTERS: dict[str, HFAdapter] = {
    t: cls()
    for cls in (
        MixtralAdapter,
        QwenMoeAdapter,
        GraniteMoeAdapter,
        DeepseekV3Adapter,
        Llama4Adapter,
        DbrxAdapter,
        Gemma4Adapter,
        JetMoeAdapter,
        LongcatFlashAdapter,
        InklingAdapter,
    )
    for t in cls.model_types
}


def install_adapter(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Patch the routers of a transformers MoE model; return ``(path, router)`` pairs.

    Parameters
    ----------
    model : nn.Module
        A transformers model (anything with ``config.model_type``).

    Returns
    -------
    list of tuple
        The patched routers in layer order.
    """
    model_type = model.config.model_type
    adapter = ADAPTERS.get(model_type, GenericAdapter())
    found = adapter.install(model)
    reasons = getattr(adapter, "reasons", {})
    if not found and reasons:
        why = "; ".join(reasons.values())
        raise ValueError(f"this {model_type!r} model's routers are refused: {why}")
    if not found:
        supported = ", ".join(sorted(ADAPTERS))
        raise ValueError(
            f"no MoE router found in this {model_type!r} model: it is not a Mixture-of-Experts "
            f"model, or its router is not recognisable (a gate with weight (num_experts, "
            f"hidden_size), a top_k and a (logits, weights, experts) output). Supported model "
            f"types: {supported}"
        )
    return found
