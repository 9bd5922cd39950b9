"""Choose the embedded default's in-distribution set by measurement, on validation questions.

Cloze accuracy (per-char normalised) and confidence regime of the dense SmolLM2 and of the
embedded MoE on each candidate's *validation* questions (cut exactly as ``vmoer demo`` cuts them:
test first, never scored here). The choice is the set where the MoE is furthest above chance
among those that hold the demo's splits (test >= 400, validation >= 200, some training questions).

    python benchmarks/choose_id_set.py --n-test 400 --n-val 200 \
        --out benchmarks/results/choose_id_set.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vmoer_ppl.embedded import load_dense, load_embedded
from vmoer_ppl.pipeline.loading import fast_experts_on_cpu
from vmoer_ppl.pipeline.regime import regime_of
from vmoer_ppl.pipeline.sets import ID_CANDIDATES, id_splits
from vmoer_ppl.scoring import score_cloze


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=400)
    parser.add_argument("--n-val", type=int, default=200)
    parser.add_argument("--candidates", nargs="+", default=["arc_easy", "sciq+support", "sciq"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    models = {"dense": load_dense(), "moe": load_embedded()}
    fast_experts_on_cpu(models["moe"][0])
    rows = {}
    for key in args.candidates:
        spec = ID_CANDIDATES[key]
        splits = id_splits(spec, n_test=args.n_test, n_val=args.n_val, n_train=10**6)
        for name, (model, tok) in models.items():
            logits, labels = score_cloze(model, tok, splits.val, with_context=spec.with_context)
            chance = (1.0 / torch.isfinite(logits).sum(-1)).mean().item()
            rows[f"{key}/{name}"] = {
                "n_val": len(splits.val),
                "n_train": len(splits.train),
                "chance": chance,
                **regime_of(torch.softmax(logits, -1), labels),
            }
            print(key, name, rows[f"{key}/{name}"], flush=True)
    best = max(args.candidates, key=lambda k: rows[f"{k}/moe"]["acc"] - rows[f"{k}/moe"]["chance"])
    print(f"chosen ID set: {best}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"rows": rows, "chosen": best}, indent=2))


if __name__ == "__main__":
    main()
