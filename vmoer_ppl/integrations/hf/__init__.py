"""transformers integration: router adapters per architecture family, answer heads."""

from vmoer_ppl.integrations.hf.base import HFAdapter, patch_router
from vmoer_ppl.integrations.hf.heads import NextTokenHead
from vmoer_ppl.integrations.hf.registry import ADAPTERS, install_adapter
from vmoer_ppl.nn.masks import last_token_index

__all__ = [
    "ADAPTERS",
    "HFAdapter",
    "NextTokenHead",
    "install_adapter",
    "last_token_index",
    "patch_router",
]
