"""Closed-form predictive routing against Monte Carlo, on fitted runs.

For each run and family: (1) on a probe of ID test questions, the error of the routing
probabilities (mean total variation per token position) and the share of positions whose
selected top-K set equals the reference's, against S = ``--ref-samples`` Monte Carlo draws (the
ground truth of the integral; 20,000 by default: S = 2,000 itself agrees with it on only ~90 %
of the top-K sets), for each link approximation, for S = 35 Monte Carlo at ``--mc-seeds``
evaluation seeds and for S = 2,000; (2) the end metrics on every evaluation set (ID acc, NLL, ECE;
mean OOD AUROC of the normalised answer entropy) for the analytic mode and for S = 35 at each
seed, and the time of each. Never trains, never touches the validation split.

Usage::

    python benchmarks/analytic_predictive.py runs/seeds/s0 runs/seeds/s1 runs/seeds/s2 \
        --out benchmarks/results/analytic_predictive.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from common import write_result

from vmoer_ppl import predict
from vmoer_ppl.data.tensors import subset
from vmoer_ppl.pipeline.evaluate import bayesian_outputs, evaluate_outputs
from vmoer_ppl.pipeline.open_run import open_run
from vmoer_ppl.pipeline.run_dir import RUN_FILE

MC_S = 35


def routing(bm, guide, probe, seed, **kw) -> dict:
    torch.manual_seed(seed)
    return predict(bm, guide, **probe, **kw).routing


def reference(bm, guide, probe, total: int, chunk: int = 2000) -> dict:
    """``p̄`` from ``total`` draws (in chunks) and its top-K sets, per routing key."""
    parts = [
        routing(bm, guide, probe, 10_000 + i, mode="mc", num_samples=chunk)
        for i in range(max(1, total // chunk))
    ]
    k = next(iter(parts[0].values())).experts.shape[-1]
    ref = {}
    for name in parts[0]:
        p = torch.stack([r[name].probs for r in parts]).mean(0)  # (B, T, E)
        ref[name] = (p, p.topk(k, -1).indices)
    return ref


def real_positions(bm, probe) -> dict:
    """Token mask `(B, T)` of each routing grid (``None``: the network has one grid)."""
    net = bm.net
    return net.routing_grids(**probe) if hasattr(net, "routing_grids") else {}


def routing_errors(out: dict, ref: dict, masks: dict) -> dict:
    """Mean TV of routing probabilities and share of identical top-K sets at real tokens."""
    tv, same = [], []
    for name, (p, experts) in ref.items():
        mask = masks.get(name.rsplit(".", 1)[-1])
        mask = torch.ones(p.shape[:-1], dtype=torch.bool) if mask is None else mask.bool()
        tv.append(float(((out[name].probs - p).abs().sum(-1) / 2)[mask].mean()))
        hit = (out[name].experts.sort(-1).values == experts.sort(-1).values).all(-1)
        same.append(float(hit[mask].float().mean()))
    return {"tv": statistics.mean(tv), "topk_same": statistics.mean(same)}


def end_metrics(opened, bm, guide, seed: int, **kw) -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    outs = {k: bayesian_outputs(bm, guide, opened.data[k], desc=k, **kw) for k in opened.eval_sets}
    seconds = time.perf_counter() - t0
    res = evaluate_outputs(outs, opened.data, opened.id_key)
    ood = [v["auroc_answer_entropy"] for k, v in res.items() if k != "id"]
    return {
        "acc": res["id"]["acc"],
        "nll": res["id"]["nll"],
        "ece": res["id"]["ece"],
        "ood_auroc": statistics.mean(ood) if ood else float("nan"),
        "seconds": seconds,
    }


def bench_family(opened, bm, guide, args) -> dict:
    probe = subset(opened.data[opened.id_key], range(args.routing_questions))
    probe.pop("labels")
    ref, masks = reference(bm, guide, probe, args.ref_samples), real_positions(bm, probe)
    rows = {}
    for link in args.links:
        out = routing(bm, guide, probe, 0, mode="analytic", num_samples=2, link=link)
        rows[f"analytic:{link}"] = routing_errors(out, ref, masks)
    for s in range(args.mc_seeds):
        out = routing(bm, guide, probe, 100 + s, mode="mc", num_samples=MC_S)
        rows[f"mc{MC_S}:seed{s}"] = routing_errors(out, ref, masks)
    out = routing(bm, guide, probe, 0, mode="mc", num_samples=2000)
    rows["mc2000"] = routing_errors(out, ref, masks)
    end = {"analytic": end_metrics(opened, bm, guide, 0, mode="analytic", num_samples=MC_S)}
    for s in range(args.mc_seeds):
        end[f"mc{MC_S}:seed{s}"] = end_metrics(opened, bm, guide, 100 + s, num_samples=MC_S)
    return {"routing": rows, "end": end}


def summarise(results: dict, links) -> list[str]:
    lines = [
        "| run | family | mode | routing TV vs ref | top-K set = ref | acc | NLL | ECE | "
        "OOD AUROC | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run, fams in results.items():
        for fam, r in fams.items():
            mc = [k for k in r["end"] if k.startswith("mc")]
            for k in ["analytic", *mc]:
                rk = f"analytic:{links[0]}" if k == "analytic" else k
                e, g = r["end"][k], r["routing"][rk]
                lines.append(
                    f"| {Path(run).name} | {fam} | {k} | {g['tv']:.4f} | {g['topk_same']:.3f} | "
                    f"{e['acc']:.4f} | {e['nll']:.4f} | {e['ece']:.4f} | {e['ood_auroc']:.4f} | "
                    f"{e['seconds']:.0f} |"
                )
            for k in [*(f"analytic:{link}" for link in links[1:]), "mc2000"]:
                g = r["routing"][k]
                lines.append(
                    f"| {Path(run).name} | {fam} | {k} | {g['tv']:.4f} | "
                    f"{g['topk_same']:.3f} | | | | | |"
                )
    lines += ["", "Analytic minus the S = 35 mean, and the S = 35 spread (sd over eval seeds):", ""]
    lines.append("| run | family | metric | analytic − mean(MC35) | sd(MC35) |")
    lines.append("|---|---|---|---|---|")
    for run, fams in results.items():
        for fam, r in fams.items():
            mc = [v for k, v in r["end"].items() if k.startswith("mc")]
            for m in ("acc", "nll", "ece", "ood_auroc"):
                vals = [v[m] for v in mc]
                sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
                d = r["end"]["analytic"][m] - statistics.mean(vals)
                lines.append(f"| {Path(run).name} | {fam} | {m} | {d:+.4f} | {sd:.4f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="fitted and evaluated run directories")
    ap.add_argument("--families", nargs="*", help="default: every family of the run")
    ap.add_argument(
        "--links", nargs="+", default=["second-order", "probit", "mean-field", "bridge"]
    )
    ap.add_argument("--routing-questions", type=int, default=4)
    ap.add_argument("--ref-samples", type=int, default=20_000)
    ap.add_argument("--mc-seeds", type=int, default=3)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    results = {}
    for run in args.runs:
        out = Path(run)
        opened = open_run(out, json.loads((out / RUN_FILE).read_text()))
        fams = args.families or list(opened.guides)
        results[run] = {f: bench_family(opened, *opened.guides[f], args) for f in fams}
    print("\n".join(summarise(results, args.links)))
    write_result(args.out, {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
