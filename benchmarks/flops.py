"""Benchmark: per-token FLOPs overhead of Bayesian routers (S = 35) on public MoE configurations.

The deterministic model's FLOPs per token come from its configuration: every matmul a token goes
through (attention projections, the K routed and any shared experts, the router, the LM head),
2 FLOPs per multiply-add, plus attention scores at a context of ``--context`` tokens. Each config
is also instantiated on the meta device (no memory, no weights) to check the architecture and
count its parameters. The Bayesian router's extra FLOPs are *counted* with
``torch.utils.flop_counter.FlopCounterMode`` on the real guide and MC-routing code
(:func:`vmoer_ppl.infer.compiled.router_forward`) at the config's width D and expert count E, for
one token; like the model count, it counts matmuls (elementwise ops are <1% of either). Overhead
= extra FLOPs x Bayesian layers / model FLOPs. Goal (issue 8): <= 0.5% for the full-covariance
router in the last 5 layers of Granite.

    python benchmarks/flops.py --out benchmarks/results/flops.json
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from common import write_result
from torch.utils.flop_counter import FlopCounterMode

from vmoer_ppl import bayesianize
from vmoer_ppl.infer.compiled import no_validation, router_forward
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig


@dataclass(frozen=True)
class MoESpec:
    """The public hyper-parameters that decide FLOPs per token."""

    name: str
    model_type: str  # transformers model_type for the meta instantiation
    hidden: int
    layers: int  # decoder layers
    moe_layers: int  # layers with a router
    heads: int
    kv_heads: int
    head_dim: int
    experts: int  # E
    top_k: int  # K
    expert_ffn: int  # per-expert intermediate width
    shared_ffn: int  # shared-expert intermediate width (0: none)
    dense_ffn: int  # FFN width of non-MoE layers
    vocab: int
    extra: dict  # config keys for the meta instantiation


SPECS = [
    MoESpec("Granite-3.1-3B-A800M", "granitemoe", 1536, 32, 32, 24, 8, 64, 40, 8, 512, 0, 0,
            49155, {"num_local_experts": 40, "num_experts_per_tok": 8, "intermediate_size": 512}),
    MoESpec("Qwen1.5-MoE-A2.7B", "qwen2_moe", 2048, 24, 24, 16, 16, 128, 60, 4, 1408, 5632, 0,
            151936, {"num_experts": 60, "num_experts_per_tok": 4, "moe_intermediate_size": 1408,
                     "shared_expert_intermediate_size": 5632, "intermediate_size": 5632}),
    MoESpec("DeepSeek-MoE-16B", "qwen2_moe", 2048, 28, 27, 16, 16, 128, 64, 6, 1408, 2816, 10944,
            102400, {"num_experts": 64, "num_experts_per_tok": 6, "moe_intermediate_size": 1408,
                     "shared_expert_intermediate_size": 2816, "intermediate_size": 10944}),
    MoESpec("Mixtral-8x7B", "mixtral", 4096, 32, 32, 32, 8, 128, 8, 2, 14336, 0, 0, 32000,
            {"num_local_experts": 8, "num_experts_per_tok": 2, "intermediate_size": 14336}),
    MoESpec("OLMoE-1B-7B", "olmoe", 2048, 16, 16, 16, 16, 128, 64, 8, 1024, 0, 0, 50304,
            {"num_experts": 64, "num_experts_per_tok": 8, "intermediate_size": 1024}),
    MoESpec("Qwen3-30B-A3B", "qwen3_moe", 2048, 48, 48, 32, 4, 128, 128, 8, 768, 0, 0, 151936,
            {"num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
             "intermediate_size": 6144, "head_dim": 128}),
]  # fmt: skip


def model_flops(s: MoESpec, context: int) -> float:
    """Deterministic forward FLOPs per token (matmuls, 2 per multiply-add)."""
    attn_proj = s.hidden * s.heads * s.head_dim * 2 + s.hidden * s.kv_heads * s.head_dim * 2
    scores = 2 * s.heads * s.head_dim * context  # q k^T and p v, over the context
    swiglu = 3 * s.hidden  # gate, up, down per unit of intermediate width
    moe = s.top_k * swiglu * s.expert_ffn + swiglu * s.shared_ffn + s.hidden * s.experts
    dense = swiglu * s.dense_ffn
    per_layer_macs = attn_proj + scores / 2
    macs = s.layers * per_layer_macs + s.moe_layers * moe + (s.layers - s.moe_layers) * dense
    return 2 * (macs + s.hidden * s.vocab)


def meta_parameters(s: MoESpec) -> int | None:
    """Parameter count of the config instantiated on the meta device (None if unavailable)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(
        s.model_type,
        hidden_size=s.hidden,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        num_key_value_heads=s.kv_heads,
        vocab_size=s.vocab,
        **s.extra,
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def router_extra_flops(s: MoESpec, family: str, num_samples: int, trunk_dim=None) -> float:
    """Counted FLOPs of one Bayesian router's forward for one token, minus the deterministic one."""
    toy = ToyMoEConfig(
        hidden_size=s.hidden,
        intermediate_size=8,
        num_hidden_layers=1,
        num_local_experts=s.experts,
        num_experts_per_tok=s.top_k,
        vocab_size=8,
    )
    model, guide = bayesianize(ToyMoEClassifier(toy), family=family, trunk_dim=trunk_dim)
    site = model.sites[0]
    u = torch.randn(1, 1, s.hidden)
    with torch.no_grad(), no_validation(), FlopCounterMode(display=False) as counter:
        l_det = u @ site.weight.T
        router_forward(model, guide, site, u, l_det, num_samples)
    return counter.get_total_flops() - 2 * s.hidden * s.experts  # l_det is the model's own


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=35)
    parser.add_argument("--context", type=int, default=512, help="tokens attended to")
    parser.add_argument("--specs", nargs="*", default=None, help="names to run (default: all)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    families = {  # family (trunk width H): D // divisor, stated (the defaults differ by family)
        "logit-mf": 4,
        "logit-fc": 4,
        "temperature": 4,
        "logit-fc (H=D/16)": 16,
        "logit-lowrank (H=D/4)": 4,
        "logit-lowrank (H=D/16, its default)": 16,
    }
    rows = []
    for s in SPECS:
        if args.specs and s.name not in args.specs:
            continue
        base = model_flops(s, args.context)
        row = {"model": s.name, "gflops_per_token": base / 1e9, "params_meta": meta_parameters(s)}
        for fam, divisor in families.items():
            extra = router_extra_flops(
                s, fam.split(" ")[0], args.samples, trunk_dim=s.hidden // divisor
            )
            for n in (5, 10):
                row[f"{fam} last {n} (%)"] = 100 * extra * min(n, s.moe_layers) / base
        rows.append(row)
    keys = [k for k in rows[0] if k.endswith("(%)")]
    print(f"Router FLOPs overhead per token, S={args.samples}, context {args.context}")
    print("| model | GFLOPs/token | params (meta) | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for r in rows:
        cells = " | ".join(f"{r[k]:.3f}" for k in keys)
        head = f"| {r['model']} | {r['gflops_per_token']:.2f} | {r['params_meta'] / 1e9:.2f}B"
        print(f"{head} | {cells} |")
    write_result(args.out, {"machine": platform.processor() or platform.machine(), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
