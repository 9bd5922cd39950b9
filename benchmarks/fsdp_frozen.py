"""FSDP vs replicated weights for a *frozen* backbone: memory per process against traffic per step.

Run under 2+ processes: ``torchrun --nproc_per_node 2 benchmarks/fsdp_frozen.py``. A Qwen2-MoE
decoder stack built from a config (random weights, frozen) with a small trainable input map in
front of it, so the backward crosses every frozen layer (as the pathwise gradient to the earlier
Bayesian routers does). Two layouts, one step = forward + backward + all-reduce of the trainable
gradients:

- ``replicated``: every process holds the whole stack (data parallelism, what ``vmoer fit``
  under torchrun does);
- ``fsdp``: each decoder layer ``fully_shard``-ed (FSDP2), the trainable map replicated.

Printed per layout: parameters resident per process, collectives per step and the bytes they
move (counted with ``CommDebugMode``), and the median step time of this machine. The ratio that
decides the tool: FSDP saves ``(1 - 1/N)`` of the frozen weights per process at rest and pays for
it by gathering every layer twice per step (forward, and again for the backward, which needs the
weights to carry the gradient down to the trainable parameters); a frozen backbone has no
gradients or optimiser state for FSDP to shard, which is where its savings are in training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor.debug import CommDebugMode
from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

from vmoer_ppl.infer.sharding import shutdown


def build(args) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The frozen decoder model and the trainable map in front of it (same seed everywhere)."""
    torch.manual_seed(0)
    cfg = Qwen2MoeConfig(
        vocab_size=256,
        hidden_size=args.hidden,
        intermediate_size=2 * args.hidden,
        moe_intermediate_size=args.hidden // 2,
        shared_expert_intermediate_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=8,
        num_key_value_heads=8,
        num_experts=args.experts,
        num_experts_per_tok=2,
        max_position_embeddings=args.tokens,
    )
    model = Qwen2MoeForCausalLM(cfg).model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, torch.nn.Linear(args.hidden, args.hidden)


def local_bytes(module: torch.nn.Module) -> int:
    """Bytes of the parameters this process holds (its shards under FSDP)."""
    return sum(
        (p.to_local() if hasattr(p, "to_local") else p).numel() * p.element_size()
        for p in module.parameters()
    )


def step(model, front, x) -> None:
    """Forward through the frozen stack, backward to ``front``, all-reduce its gradients."""
    front.zero_grad()
    out = model(inputs_embeds=front(x)).last_hidden_state
    out.float().pow(2).mean().backward()
    for p in front.parameters():
        dist.all_reduce(p.grad)


def measure(layout: str, args) -> dict:
    """Resident parameter bytes, collectives and bytes of one step, median step time."""
    model, front = build(args)
    if layout == "fsdp":
        mesh = init_device_mesh("cpu", (dist.get_world_size(),))
        for layer in model.layers:
            fully_shard(layer, mesh=mesh)  # resharded after its forward (not the root)
        fully_shard(model, mesh=mesh)  # the root: embeddings and final norm
    resident, in_layers = local_bytes(model), local_bytes(model.layers)
    x = torch.randn(
        args.batch, args.tokens, args.hidden, generator=torch.Generator().manual_seed(1)
    )
    step(model, front, x)  # warm-up
    with warnings.catch_warnings(), CommDebugMode() as comm:
        warnings.simplefilter("ignore")  # its module tracker's backward hooks on model outputs
        step(model, front, x)
    times = []
    for _ in range(args.repeats):
        dist.barrier()
        t = time.perf_counter()
        step(model, front, x)
        times.append(time.perf_counter() - t)
    counts = {str(k): v for k, v in comm.get_comm_counts().items()}
    return {
        "resident_MB": resident / 2**20,
        "layers_MB": in_layers / 2**20,  # resident share of the decoder layers (local shards)
        "collectives": counts,
        "step_ms": 1e3 * statistics.median(times),
    }


def main() -> None:
    """Measure both layouts under the current process group; rank 0 prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="also write the results as JSON")
    args = parser.parse_args()
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    res = {layout: measure(layout, args) for layout in ("replicated", "fsdp")}
    weights, n = res["replicated"]["resident_MB"], dist.get_world_size()
    layers = res["replicated"]["layers_MB"]
    gathers = res["fsdp"]["collectives"].get("c10d._allgather_base_", 0)
    # the root unit once (forward), each layer twice (forward, then again for the backward)
    gathered = (n - 1) / n * ((weights - layers) + 2 * layers)
    res["fsdp"]["received_MB"] = gathered if gathers == 1 + 2 * args.layers else float("nan")
    act = args.batch * args.tokens * args.hidden * 4 / 2**20
    if dist.get_rank() == 0:
        print(f"{n} processes, frozen stack {weights:.1f} MB (float32), {vars(args)}")
        for layout, r in res.items():
            print(
                f"  {layout:10s} resident {r['resident_MB']:8.1f} MB   step {r['step_ms']:8.1f} ms"
                f"   collectives {r['collectives']}"
            )
        print(
            f"  fsdp: saves {weights - res['fsdp']['resident_MB']:.1f} MB per process at rest; "
            f"{gathers} all-gathers per step receive {res['fsdp']['received_MB']:.1f} MB of "
            f"weights (root once, each layer twice: forward, backward); a device_map "
            f"boundary moves {act:.2f} MB of activations per step instead"
        )
        ratio = res["fsdp"]["step_ms"] / res["replicated"]["step_ms"]
        print(f"  step time fsdp / replicated: {ratio:.2f}")
        if args.out:
            with open(args.out, "w") as fh:
                json.dump({"args": vars(args), "processes": n, "results": res}, fh, indent=2)
    shutdown()  # barrier, then destroy


if __name__ == "__main__":
    main()
