"""transformers integration: router adapters per architecture family, answer heads."""

from vmoer_ppl.integrations.hf.base import HFAdapter, patch_router
from vmoer_ppl.integrations.hf.heads import NextTokenHead, last_token_index
from vmoer_ppl.integrations.hf.registry import ADAPTERS, install_adapter

__all__ = [
    "ADAPTERS",
    "HFAdapter",
    "NextTokenHead",
    "install_adapter",
    "last_token_index",
    "patch_router",
]
