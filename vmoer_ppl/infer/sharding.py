"""Sharded SVI steps: micro-batches within a process, data parallelism across processes.

A step's global batch is cut into ``shards`` micro-batches (rows ``k::shards``); each shard's loss
is normalised by the *global* batch (questions and routed tokens), so the shard losses sum to the
loss of the whole batch and their gradients sum to its gradient. Every shard's random draws come
from a generator seeded by ``(seed, step, shard)``: results depend only on the number of shards,
not on which process runs which shard. Under ``torch.distributed`` (gloo or NCCL; ``torchrun`` or
``accelerate launch``) rank ``r`` of ``W`` runs shards ``r, r + W, ...`` and the guide's gradients
(the only trainable parameters: small) are all-reduced. So a 2-process run equals a 1-process run
with ``shards=2`` to float round-off (``tests/infer/test_distributed.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyro
import torch
import torch.distributed as dist

from vmoer_ppl.data.tensors import inputs_of


@dataclass(frozen=True)
class ShardNorm:
    """Normalisers of one step's global batch.

    Attributes
    ----------
    questions : int
        Questions in the global batch.
    tokens : int
        Routed real tokens in the global batch (all grids).
    shards : int
        Shards the global batch is cut into (global latents' KL is split evenly over them).
    """

    questions: int
    tokens: int
    shards: int


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def backend_for(cuda: bool) -> str:
    """The process-group backend: gloo for CPU tensors, plus NCCL for CUDA ones when present."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def init_from_env() -> tuple[int, int]:
    """Join the process group ``torchrun`` / ``accelerate launch`` describe in the environment.

    With CUDA, CPU tensors go through gloo and CUDA tensors through NCCL (``"cpu:gloo,cuda:nccl"``;
    NCCL alone refuses the CPU tensors the guide and the loss sums live in); else gloo. A no-op
    without ``WORLD_SIZE > 1``.

    Returns
    -------
    tuple of int
        ``(rank, world_size)``.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend_for(torch.cuda.is_available()))
    return world()


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if world()[1] > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group after a run that succeeded on this process (no-op without one).

    Every process first waits at a barrier, so none tears down its gloo connections while a peer
    still uses them; a process that exits with the group alive can abort in gloo's threads during
    interpreter finalisation ("terminate called without an active exception"). Not for error paths:
    the barrier would wait for a peer that failed.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def local_shards(shards: int) -> list[int]:
    """The shard indices this process runs.

    Raises
    ------
    ValueError
        If ``shards`` is not a multiple of the world size.
    """
    rank, size = world()
    if shards % size:
        raise ValueError(f"shards={shards} must be a multiple of the {size} processes")
    return list(range(rank, shards, size))


def shard_rows(idx: torch.Tensor, shard: int, shards: int) -> torch.Tensor:
    """Rows of shard ``shard`` of a global batch: ``idx[shard::shards]``."""
    return idx[shard::shards]


def count_tokens(model, inputs: dict) -> int:
    """Real tokens the network routes for ``inputs`` (the sum over its routing grids)."""
    ctx = model.context(model.net_inputs(**inputs_of(inputs)))
    return int(sum(g.mask.sum() for g in ctx.grids.values()))


def seed_shard(seed: int, step: int, shard: int) -> None:
    """Seed every RNG for one shard of one step."""
    pyro.set_rng_seed(((seed * 1_000_003 + step) * 1009 + shard) % 2**32)


def all_reduce_grads(params: Sequence[torch.Tensor]) -> None:
    """Sum the gradients over processes (no-op in a single process)."""
    if world()[1] == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def everywhere(flag: bool) -> bool:
    """Whether ``flag`` holds in every process (so that all take the same branch)."""
    return all_reduce_sum(float(flag)) == world()[1]


def all_reduce_sum(value: float) -> float:
    """Sum a float over processes."""
    if world()[1] == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.item()
