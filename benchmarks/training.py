"""Benchmark: SVI tokens/s (fused vs reference), MC routing vectorised vs looped, torch.compile.

Toy MoE (D=64, E=8, 4 Bayesian layers) so the router path is what is measured. Prints the ratios
measured in one run and writes them as JSON. Goals (issue 8): fused / reference <= 0.5,
vectorised / looped <= 0.1; torch.compile of the Bayesian router forward (no graph breaks,
``tests/infer/test_compile.py``): speed-up over eager reported.

    python benchmarks/training.py --out benchmarks/results/training.json
"""

from __future__ import annotations

import argparse
import platform
import time

import pyro
import torch
from common import timed, timed_pair, write_result
from pyro.infer import TraceMeanField_ELBO

from vmoer_ppl import bayesianize
from vmoer_ppl.data import make_counting_task
from vmoer_ppl.data.tensors import inputs_of
from vmoer_ppl.infer import fused_loss
from vmoer_ppl.infer.compiled import no_validation, router_forward
from vmoer_ppl.infer.predictive import draw
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig, mc_logits, route
from vmoer_ppl.nn.mc import softmax
from vmoer_ppl.routing import Capture, run_routed


def svi_steps(model, guide, batch, repeats):
    params = list(guide.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)

    def step(loss_fn):
        def run():
            loss = loss_fn()
            opt.zero_grad()
            loss.backward()
            opt.step()

        return run

    ref = step(lambda: elbo.differentiable_loss(model, guide, **batch))
    fus = step(lambda: fused_loss(model, guide, **batch))
    return timed_pair(ref, fus, repeats)  # alternating: the machine's drift stays out of the ratio


def mc_routing(model, guide, batch, num_samples, repeats):
    """Time MC routing inside every Bayesian router: one vectorised draw vs a loop over S."""
    capture = Capture()
    with torch.no_grad():
        run_routed(model.net, inputs_of(batch), model.sites, capture)
    captured = capture.inputs

    with torch.no_grad():
        qs = [
            (s, u, l_det, guide.q_dists(s, u, l_det)["logits"]) for s, u, l_det in captured.values()
        ]

    def vectorised(with_q: bool):
        for site, u, l_det, q in qs:
            q = guide.q_dists(site, u, l_det)["logits"] if with_q else q
            route(mc_logits(draw(q, num_samples)), site.top_k, site.gate_rule)

    def looped(with_q: bool):
        for site, u, l_det, q in qs:
            q = guide.q_dists(site, u, l_det)["logits"] if with_q else q
            p_bar = torch.zeros_like(l_det)
            for _ in range(num_samples):  # same primitives, one sample at a time
                p_bar += softmax(draw(q, 1)[0]) / num_samples
            route(p_bar.log(), site.top_k, site.gate_rule)

    with torch.no_grad():  # alternating pairs, as for the SVI step
        t_loop, t_vec, ratio = timed_pair(lambda: looped(False), lambda: vectorised(False), repeats)
        q_loop, q_vec, q_ratio = timed_pair(lambda: looped(True), lambda: vectorised(True), repeats)
    return {
        "looped_mc_s": t_loop,
        "vectorised_mc_s": t_vec,
        "vectorised_over_looped": ratio,
        "looped_with_q_s": q_loop,
        "vectorised_with_q_s": q_vec,
        "vectorised_over_looped_with_q": q_ratio,
    }


def compile_speedup(model, guide, batch, num_samples, repeats, backend):
    """Eager vs ``torch.compile`` of one Bayesian router's forward (guide + S draws + MC route)."""
    site = model.sites[0]
    capture = Capture()
    with torch.no_grad():
        run_routed(model.net, inputs_of(batch), model.sites, capture)
    _, u, l_det = capture.inputs[site.name]
    torch._dynamo.reset()
    compiled = torch.compile(router_forward, backend=backend, fullgraph=True)
    with torch.no_grad(), no_validation():
        t0 = time.perf_counter()
        compiled(model, guide, site, u, l_det, num_samples)  # compile once
        compile_s = time.perf_counter() - t0
        t_eager = timed(lambda: router_forward(model, guide, site, u, l_det, num_samples), repeats)
        t_comp = timed(lambda: compiled(model, guide, site, u, l_det, num_samples), repeats)
    return {"router_eager_s": t_eager, "router_compiled_s": t_comp, "compile_s": compile_s}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="logit-fc")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--num-samples", type=int, default=35)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--backend", default="inductor", help="torch.compile backend")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    cfg = ToyMoEConfig(
        hidden_size=args.hidden,
        intermediate_size=2 * args.hidden,
        num_local_experts=args.experts,
        num_hidden_layers=args.layers,
    )
    model, guide = bayesianize(ToyMoEClassifier(cfg), family=args.family, layers="all")
    batch = make_counting_task(args.batch_size, max_len=16, seed=0)
    t_ref, t_fus, fused_ratio = svi_steps(model, guide, batch, args.repeats)
    mc = mc_routing(model, guide, batch, args.num_samples, args.repeats)
    comp = compile_speedup(model, guide, batch, args.num_samples, args.repeats, args.backend)
    tokens = int(batch["attention_mask"].sum())
    t_loop, t_vec = mc["looped_mc_s"], mc["vectorised_mc_s"]
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}",
        "config": vars(args),
        "reference_step_s": t_ref,
        "fused_step_s": t_fus,
        "fused_over_reference": fused_ratio,  # median of the alternating pairs' ratios
        "reference_tokens_per_s": tokens / t_ref,
        "fused_tokens_per_s": tokens / t_fus,
        **comp,
        "compiled_speedup": comp["router_eager_s"] / comp["router_compiled_s"],
        **mc,
    }
    print(
        f"SVI step ({args.family}, B={args.batch_size}, {args.layers} Bayesian layers, "
        f"E={args.experts}):"
    )
    print(
        f"  reference {t_ref * 1e3:8.2f} ms   fused {t_fus * 1e3:8.2f} ms   "
        f"fused/reference = {fused_ratio:.3f}  (goal <= 0.5; median of alternating pairs)"
    )
    print(f"MC routing, S={args.num_samples}, all Bayesian routers (draw + average + gate):")
    print(
        f"  looped    {t_loop * 1e3:8.2f} ms   vectorised {t_vec * 1e3:8.2f} ms   "
        f"vectorised/looped = {mc['vectorised_over_looped']:.3f}  (goal <= 0.1; paired)"
    )
    q_ratio = mc["vectorised_over_looped_with_q"]
    print(f"  including the amortised net that builds q: vectorised/looped = {q_ratio:.3f}")
    print(
        f"SVI tokens/s: reference {tokens / t_ref:,.0f}   fused {tokens / t_fus:,.0f}"
        f"  ({tokens} tokens per step)"
    )
    print(
        f"torch.compile ({args.backend}) of one router's forward: eager "
        f"{comp['router_eager_s'] * 1e3:.3f} ms, compiled {comp['router_compiled_s'] * 1e3:.3f} ms,"
        f" speed-up {result['compiled_speedup']:.2f}x (compile {comp['compile_s']:.1f} s)"
    )
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
