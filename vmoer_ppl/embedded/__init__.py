"""The embedded default: a real MoE built offline from SmolLM2-135M-Instruct (MoEfication)."""

from vmoer_ppl.embedded.build import EmbeddedConfig, cache_root, embedded_path, load_embedded
from vmoer_ppl.embedded.convert import MoELayer, dense_to_moe, qwen2_moe_config
from vmoer_ppl.embedded.source import lambada_passages, load_dense

__all__ = [
    "EmbeddedConfig",
    "MoELayer",
    "cache_root",
    "dense_to_moe",
    "embedded_path",
    "lambada_passages",
    "load_dense",
    "load_embedded",
    "qwen2_moe_config",
]
