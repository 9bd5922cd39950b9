"""Benchmark: SVI tokens/s at 1 and 2 processes (gloo data parallelism), and a size estimate.

Runs the same sharded SVI (``shards=2``) in one process and in two (one CPU thread each, so the
two processes use the 2 cores); prints tokens/s and the speed-up. With ``--estimate`` it prints
the per-token FLOPs and memory a router fit needs on Mixtral-8x7B and Qwen3-30B-A3B, from the
configs in ``benchmarks/flops.py``.

    python benchmarks/scaling.py --out benchmarks/results/scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import write_result

ROOT = Path(__file__).resolve().parents[1]


def fit(shards: int, steps: int, batch: int, hidden: int) -> tuple[float, int]:
    """Seconds for ``steps`` SVI steps and the tokens they routed."""
    from vmoer_ppl import bayesianize
    from vmoer_ppl.infer.svi import SVIConfig, fit_svi
    from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = ToyMoEConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=4,
        num_local_experts=16,
        vocab_size=256,
    )
    model, guide = bayesianize(ToyMoEClassifier(cfg), family="logit-fc")
    ids = torch.randint(256, (batch * 4, 64))
    data = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(4, (batch * 4,)),
    }
    svi = SVIConfig(num_steps=steps, batch_size=batch, shards=shards, progress=False)
    fit_svi(
        model, guide, data, SVIConfig(num_steps=1, batch_size=batch, shards=shards, progress=False)
    )
    t0 = time.perf_counter()
    fit_svi(model, guide, data, svi)
    return time.perf_counter() - t0, steps * batch * 64


def worker(rank: int, world: int, init: str, out: str, steps: int, batch: int, hidden: int):
    import torch.distributed as dist

    from vmoer_ppl.infer.sharding import shutdown

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    secs, tokens = fit(2, steps, batch, hidden)
    if rank == 0:
        Path(out).write_text(json.dumps({"seconds": secs, "tokens": tokens}))
    shutdown()  # barrier, then destroy


def estimate() -> list[dict]:
    """Per-token FLOPs and memory of fitting FC routers in the last 5 layers (bf16 backbone)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from flops import SPECS, meta_parameters, model_flops, router_extra_flops

    rows = []
    for s in SPECS:
        if s.name not in ("Mixtral-8x7B", "Qwen3-30B-A3B"):
            continue
        fwd, params = model_flops(s, 512), meta_parameters(s)
        suffix = fwd * 5 / s.layers  # the Bayesian suffix: forward + backward ~ 3x its forward
        extra = 5 * router_extra_flops(s, "logit-fc", 1)  # one draw per router during SVI
        rows.append(
            {
                "model": s.name,
                "params_B": params / 1e9,
                "weights_bf16_GB": 2 * params / 1e9,
                "prefix_gflops_per_token": fwd * (s.layers - 5) / s.layers / 1e9,
                "svi_step_gflops_per_token": 3 * (suffix + extra) / 1e9,
                "prefix_cache_kB_per_token": 2 * s.hidden / 1e3,  # bf16 state entering layer L-5
            }
        )
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    one_s, tokens = fit(2, args.steps, args.batch, args.hidden)
    with tempfile.TemporaryDirectory() as tmp:
        out, init = f"{tmp}/r.json", f"file://{tmp}/rdv"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, __file__, "--worker"]
        extra = [init, out, str(args.steps), str(args.batch), str(args.hidden)]
        procs = [subprocess.Popen([*cmd, str(r), "2", *extra], env=env) for r in range(2)]
        if any(p.wait() for p in procs):
            raise RuntimeError("a worker failed")
        two_s = json.loads(Path(out).read_text())["seconds"]
    res = {
        "tokens_per_s_1proc": tokens / one_s,
        "tokens_per_s_2proc": tokens / two_s,
        "speedup": one_s / two_s,
        "config": vars(args),
        "estimate": estimate(),
    }
    head = f"SVI tokens/s (toy MoE D={args.hidden}, 4 Bayesian FC layers, batch {args.batch} x 64)"
    one, two = res["tokens_per_s_1proc"], res["tokens_per_s_2proc"]
    print(f"{head}: 1 process {one:,.0f}, 2 processes {two:,.0f}, speed-up {res['speedup']:.2f}x")
    print("| model | params | weights bf16 (GB) | prefix GFLOPs/token (once) | SVI GFLOPs/token |")
    print("|---|---|---|---|---|")
    for r in res["estimate"]:
        cells = [f"{r['params_B']:.1f}B", f"{r['weights_bf16_GB']:.0f}"]
        cells += [f"{r['prefix_gflops_per_token']:.1f}", f"{r['svi_step_gflops_per_token']:.2f}"]
        print(f"| {r['model']} | " + " | ".join(cells) + " |")
    write_result(args.out, res)
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        r, w, init, out, steps, batch, hidden = sys.argv[2:]
        worker(int(r), int(w), init, out, int(steps), int(batch), int(hidden))
    else:
        main()
