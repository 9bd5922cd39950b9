"""Memory of the models people run, from their public configs instantiated on the meta device.

For each: parameters, the backbone at bf16 and fp32, the Bayesian routers' guides (logit-fc in
the last 5 MoE layers, float32, trunk D/4) and how many 80 GB GPUs the bf16 backbone needs with
``--device-map auto`` (10 % headroom). Configs are the published ``config.json`` values (sizes
only); nothing is downloaded.   ``python benchmarks/memory_table.py``
"""

import math

import torch
from transformers import AutoConfig

from vmoer_ppl.pipeline.placement import model_bytes

CONFIGS = {
    "Mixtral-8x7B": ("mixtral", dict(hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
        num_local_experts=8, num_experts_per_tok=2)),
    "Qwen3-30B-A3B": ("qwen3_moe", dict(hidden_size=2048, intermediate_size=6144,
        moe_intermediate_size=768, num_hidden_layers=48, num_attention_heads=32,
        num_key_value_heads=4, head_dim=128, vocab_size=151936, num_experts=128,
        num_experts_per_tok=8, tie_word_embeddings=False)),
    "gpt-oss-20b": ("gpt_oss", dict(hidden_size=2880, intermediate_size=2880,
        num_hidden_layers=24, num_attention_heads=64, num_key_value_heads=8, head_dim=64,
        vocab_size=201088, num_local_experts=32, num_experts_per_tok=4)),
    "gpt-oss-120b": ("gpt_oss", dict(hidden_size=2880, intermediate_size=2880,
        num_hidden_layers=36, num_attention_heads=64, num_key_value_heads=8, head_dim=64,
        vocab_size=201088, num_local_experts=128, num_experts_per_tok=4)),
    "DeepSeek-V3": ("deepseek_v3", dict(hidden_size=7168, intermediate_size=18432,
        moe_intermediate_size=2048, num_hidden_layers=61, num_attention_heads=128,
        num_key_value_heads=128, vocab_size=129280, n_routed_experts=256, n_shared_experts=1,
        num_experts_per_tok=8, n_group=8, topk_group=4, first_k_dense_replace=3,
        q_lora_rank=1536, kv_lora_rank=512, qk_rope_head_dim=64, qk_nope_head_dim=128,
        v_head_dim=128, head_dim=64)),
}  # fmt: skip


def guide_bytes(D: int, E: int, layers: int = 5) -> int:
    """logit-fc guide: trunk D -> D/4, heads for μ (E) and the Cholesky factor (E(E+1)/2)."""
    t = D // 4
    per_layer = D * t + t + t * (E + E * (E + 1) // 2) + E + E * (E + 1) // 2
    return 4 * layers * per_layer


def main() -> None:
    print(
        "| model | parameters | bf16 backbone | fp32 backbone | guides (FC, last 5) | "
        "80 GB GPUs at bf16 |"
    )
    print("|---|---|---|---|---|---|")
    for name, (model_type, fields) in CONFIGS.items():
        config = AutoConfig.for_model(model_type, **fields)
        n, bf16 = model_bytes(config, torch.bfloat16)
        E = (
            fields.get("num_local_experts")
            or fields.get("num_experts")
            or fields["n_routed_experts"]
        )
        g = guide_bytes(fields["hidden_size"], E)
        gpus = math.ceil(bf16 / (0.9 * 80e9))
        print(
            f"| {name} | {n / 1e9:.1f} B | {bf16 / 2**30:.0f} GiB | {2 * bf16 / 2**30:.0f} GiB "
            f"| {g / 2**20:.1f} MiB | {gpus} |"
        )


if __name__ == "__main__":
    main()
