"""Router logit spreads, and what each prior scale does at initialisation.

Measure the regime before the method, on a fitted run's backbone (after its stage 1).
For each prior scale (absolute ``S`` or ``relative:C``) and each Bayesian router: the scale s_ℓ,
the fraction of the deterministic top-K a draw of the initial ``q`` (= the prior) keeps, and the
MC validation NLL of the untrained guide (S draws) against the deterministic one. Validation only.

Run: ``python benchmarks/prior_scale.py runs/demo [--family logit-mf] [--out results.json]``
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from common import write_result

from vmoer_ppl.bayesianize import bayesianize
from vmoer_ppl.data.tensors import first_rows, subset
from vmoer_ppl.infer.diagnostics import posterior_summary
from vmoer_ppl.infer.early_stop import validation_nll
from vmoer_ppl.pipeline.backbone import adapted, suffix_data
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.evaluate import deterministic_outputs
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.pipeline.run_data import encode_sets
from vmoer_ppl.pipeline.run_dir import scorer_kwargs, strip
from vmoer_ppl.priors.relative import logit_spread, parse_prior_scale, relative_prior

SCALES = ("absolute:1", "absolute:0.3", "relative:0.25", "relative:0.5", "relative:1", "relative:2")


def init_overlap(bm, guide, train: dict, questions: int = 32) -> dict[str, float]:
    """Mean top-K overlap of one draw of the initial ``q`` with the deterministic top-K."""
    torch.manual_seed(0)
    rows = first_rows(train, questions)
    return {k: v["overlap"] for k, v in posterior_summary(bm, guide, rows, batch_size=8).items()}


def main() -> None:
    """Print the table and optionally write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--family", default="logit-mf")
    ap.add_argument("--scales", nargs="*", default=list(SCALES))
    ap.add_argument("--num-samples", type=int, default=35)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cfg = FitConfig.load(args.run_dir)
    model, tok, _ = load_model(cfg)
    enc, _, _ = encode_sets(cfg, tok)
    model = adapted(cfg, Path(args.run_dir), model, tok)
    kwargs = scorer_kwargs(cfg, tok, enc)
    build = {"family": args.family, "layers": cfg.layers, **kwargs}
    bm, _ = bayesianize(model, **build)
    data = {k: strip(suffix_data(bm.net, {k: enc[k]}, model)[k]) for k in ("train", "val")}
    det = deterministic_outputs(bm.net, data["val"])["probs"]
    det_nll = -det[torch.arange(len(det)), data["val"]["labels"]].log().mean().item()
    spreads = logit_spread(bm, subset(data["train"], range(64)))
    result = {"spread": spreads, "deterministic_val_nll": det_nll, "scales": {}}
    print(f"deterministic val NLL {det_nll:.4f} (n={len(det)}); median logit spread per router:")
    for k, v in spreads.items():
        print(f"  {k}: {v:.4f}")
    print("| prior scale | s per router | init top-K overlap per router | init MC val NLL |")
    print("|---|---|---|---|")
    for text in args.scales:
        kind, value = parse_prior_scale(text)
        prior = relative_prior(spreads, value) if kind == "relative" else value
        torch.manual_seed(cfg.seed)
        bm, guide = bayesianize(model, prior=prior, **build)
        overlap = init_overlap(bm, guide, data["train"])
        val = validation_nll(bm, guide, data["val"], num_samples=args.num_samples, seed=cfg.seed)
        s = [guide.scale_at(site) for site in bm.sites]
        result["scales"][text] = {"s": s, "overlap": overlap, "val_nll": val}
        print(
            f"| {text} | {', '.join(f'{x:.3f}' for x in s)} | "
            f"{', '.join(f'{x:.2f}' for x in overlap.values())} "
            f"(mean {statistics.fmean(overlap.values()):.2f}) | {val:.4f} |"
        )
    write_result(args.out, result)


if __name__ == "__main__":
    main()
