"""Choose the embedded default's in-distribution set by measurement (issue 11).

Cloze accuracy (per-char normalised) of the dense SmolLM2 and of the embedded MoE on the
held-out test split (the same split ``vmoer demo`` evaluates on) of each candidate set; the
choice is the set where the MoE is furthest above chance with at least 500 test questions.

    python benchmarks/choose_id_set.py --n-test 500 --out benchmarks/results/choose_id_set.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vmoer_ppl.embedded import load_dense, load_embedded
from vmoer_ppl.evaluation import accuracy, calibration_errors, nll
from vmoer_ppl.pipeline.sets import ID_CANDIDATES, id_splits
from vmoer_ppl.scoring import score_cloze


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--candidates", nargs="+", default=["arc_easy", "sciq+support", "sciq"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    models = {"dense": load_dense(), "moe": load_embedded()}
    rows = {}
    for key in args.candidates:
        spec = ID_CANDIDATES[key]
        test = id_splits(spec, n_test=args.n_test, n_val=0, n_train=10**6).test
        for name, (model, tok) in models.items():
            logits, labels = score_cloze(model, tok, test, with_context=spec.with_context)
            probs = torch.softmax(logits, -1)
            chance = (1.0 / torch.isfinite(logits).sum(-1)).mean().item()
            rows[f"{key}/{name}"] = {
                "n": len(test),
                "acc": accuracy(probs, labels),
                "chance": chance,
                "nll": nll(probs, labels),
                "ece": calibration_errors(probs, labels)[0],
            }
            print(key, name, rows[f"{key}/{name}"], flush=True)
    best = max(args.candidates, key=lambda k: rows[f"{k}/moe"]["acc"] - rows[f"{k}/moe"]["chance"])
    print(f"chosen ID set: {best}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"rows": rows, "chosen": best}, indent=2))


if __name__ == "__main__":
    main()
