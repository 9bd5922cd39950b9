"""The embedded default: a real MoE built offline from SmolLM2-135M-Instruct (MoEfication)."""

from vmoer_ppl.embedded.build import EmbeddedConfig, cache_root, embedded_path, load_embedded
from vmoer_ppl.embedded.convert import dense_to_mixtral, mixtral_config
from vmoer_ppl.embedded.source import lambada_passages, load_dense

__all__ = [
    "EmbeddedConfig",
    "cache_root",
    "dense_to_mixtral",
    "embedded_path",
    "lambada_passages",
    "load_dense",
    "load_embedded",
    "mixtral_config",
]
