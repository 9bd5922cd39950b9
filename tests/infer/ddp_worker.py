"""A data-parallel SVI run on the toy model: one process per rank (gloo), or the 1-process twin."""

import sys

import torch
import torch.distributed as dist

from vmoer_ppl import bayesianize
from vmoer_ppl.infer.svi import SVIConfig, fit_svi
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig


def fit(shards=2, steps=6, family="logit-fc"):
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family=family)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(32, (40, 6), generator=gen)
    mask = torch.ones_like(ids)
    mask[::3, :2] = 0  # uneven token counts across shards
    data = {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": torch.randint(4, (40,), generator=gen),
    }
    cfg = SVIConfig(num_steps=steps, batch_size=16, lr=3e-2, seed=5, shards=shards, progress=False)
    return fit_svi(model, guide, data, cfg)


def worker(rank: int, world: int, init: str, out: str, backend: str = "gloo") -> None:
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world)
    try:
        res = fit(shards=world)
        if rank == 0:
            torch.save({"params": res.params, "losses": res.losses}, out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], *sys.argv[5:6])
