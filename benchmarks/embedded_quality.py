r"""Embedded MoE candidates against the dense SmolLM2: quality, whether routing matters, routers.

    python benchmarks/embedded_quality.py --configs 8x16x4x256 8x16x8x256 \
        --out benchmarks/results/embedded_quality.json

A candidate is ``NxExKxS``: the top N layers MoE, E routed experts, top-K, S shared neurons.
Per candidate: held-out LAMBADA perplexity (passages the build never saw); cloze accuracy on the
ID set's validation questions (never its test split); the same with each MoE layer's top-K
replaced by K random experts (gate values from the same logits, renormalised), which says how
much routing matters; and the per-layer router statistics of the build (``build_info.json``):
scale, logit spread, K/K+1 gap, gate entropy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from pathlib import Path

import torch

from vmoer_ppl.embedded import EmbeddedConfig, lambada_passages, load_dense, load_embedded
from vmoer_ppl.embedded.build import HELDOUT_PASSAGES, embedded_path
from vmoer_ppl.evaluation import accuracy
from vmoer_ppl.pipeline.loading import fast_experts_on_cpu
from vmoer_ppl.pipeline.sets import ID_CANDIDATES, id_splits
from vmoer_ppl.scoring import score_cloze


@torch.no_grad()
def perplexity(model, tokenizer, texts, batch_size=16, max_length=128) -> float:
    nll, n = 0.0, 0
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[i : i + batch_size],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_length,
        )
        logits = model(**enc).logits[:, :-1].float()
        target, mask = enc.input_ids[:, 1:], enc.attention_mask[:, 1:].bool()
        lp = torch.log_softmax(logits, -1).gather(2, target.unsqueeze(-1)).squeeze(-1)
        nll -= lp[mask].sum().item()
        n += int(mask.sum())
    return math.exp(nll / n)


@contextlib.contextmanager
def random_routing(model, seed=0):
    """Every top-K router selects K random experts; gates renormalised from its own logits."""
    gen = torch.Generator().manual_seed(seed)

    def hook(module, args, output):
        logits = output[0]  # (T, E)
        idx = torch.rand(logits.shape, generator=gen).argsort(-1)[:, : module.top_k]  # (T, K)
        gates = torch.softmax(logits.float().gather(1, idx), -1).to(output[1].dtype)
        return logits, gates, idx

    routers = [m for m in model.modules() if hasattr(m, "top_k") and hasattr(m, "weight")]
    handles = [m.register_forward_hook(hook) for m in routers]
    try:
        yield len(routers)
    finally:
        for h in handles:
            h.remove()


def id_accuracy(model, tok, records, with_context) -> float:
    logits, labels = score_cloze(model, tok, records, with_context=with_context)
    return accuracy(torch.softmax(logits, -1), labels)


def evaluate(model, tokenizer, args, records, with_context) -> dict:
    texts = lambada_passages()[-HELDOUT_PASSAGES:][: args.ppl_passages]
    return {
        "ppl_lambada_heldout": perplexity(model, tokenizer, texts),
        "id_acc": id_accuracy(model, tokenizer, records, with_context),
    }


def candidate(spec: str) -> EmbeddedConfig:
    N, E, K, S = map(int, spec.split("x"))
    return EmbeddedConfig(moe_layers=N, num_experts=E, top_k=K, shared_neurons=S)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["8x16x4x256"], help="NxExKxS")
    parser.add_argument("--id-set", default="sciq+support", choices=sorted(ID_CANDIDATES))
    parser.add_argument("--questions", type=int, default=300, help="ID validation questions")
    parser.add_argument("--n-test", type=int, default=400, help="held back, never scored here")
    parser.add_argument("--ppl-passages", type=int, default=150)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    spec = ID_CANDIDATES[args.id_set]
    val = id_splits(spec, n_test=args.n_test, n_val=args.questions, n_train=0).val
    rows = {}
    dense, tok = load_dense()
    rows["dense"] = evaluate(dense, tok, args, val, spec.with_context)
    print("dense", rows["dense"], flush=True)
    for name in args.configs:
        cfg = candidate(name)
        t0 = time.perf_counter()
        info = json.loads((embedded_path(cfg) / "build_info.json").read_text())
        model, tok = load_embedded(cfg)
        fast_experts_on_cpu(model)
        row = evaluate(model, tok, args, val, spec.with_context)
        with random_routing(model) as n_routers:
            assert n_routers == cfg.moe_layers, n_routers
            row["id_acc_random_k"] = id_accuracy(model, tok, val, spec.with_context)
        row |= {
            "build_seconds": info["build_seconds"],
            "load_or_build_seconds": time.perf_counter() - t0,
            "layers": info["layers"],
        }
        rows[name] = row
        print(name, {k: v for k, v in row.items() if k != "layers"}, flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    report(rows)


def report(rows: dict) -> None:
    d = rows["dense"]
    print(f"{'NxExKxS':<14}{'ppl':>8}{'x dense':>8}{'ID acc':>8}{'random-K':>9}{'build s':>8}")
    print(f"{'dense':<14}{d['ppl_lambada_heldout']:>8.2f}{1:>8.2f}{d['id_acc']:>8.3f}")
    for k, r in rows.items():
        if k == "dense":
            continue
        ratio = r["ppl_lambada_heldout"] / d["ppl_lambada_heldout"]
        print(
            f"{k:<14}{r['ppl_lambada_heldout']:>8.2f}{ratio:>8.2f}{r['id_acc']:>8.3f}"
            f"{r['id_acc_random_k']:>9.3f}{r['build_seconds']:>8.0f}"
        )
        for la in r["layers"]:
            print(
                f"    layer {la['layer']:>2}: alpha {la['alpha']:.3f} std {la['logit_std']:.3f} "
                f"gap {la['gap_k']:.3f} H {la['gate_entropy']:.3f}/{la['gate_entropy_max']:.3f} "
                f"err {la['held_out_relative_error']:.3f} refit "
                f"{la.get('held_out_relative_error_refit', float('nan')):.3f}"
            )


if __name__ == "__main__":
    main()
