"""Settings of an SVI fit, and what follows from them alone.

Steps, schedule, optimiser, and the fingerprint a checkpoint must share with the run that
resumes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import torch


class ELBOPath(str, Enum):
    """Which estimator computes the loss."""

    REFERENCE = "reference"
    """Pyro ``TraceMeanField_ELBO``: model and guide each run the network (the spec)."""
    FUSED = "fused"
    """One network pass with analytic KLs added at each router (same value and gradients)."""


@dataclass
class SVIConfig:
    """Settings of :func:`fit_svi`."""

    num_steps: int = 200  # optimiser steps (replaced by epochs when that is set)
    epochs: float | None = None  # passes over the data; sets num_steps = ceil(epochs × N / batch)
    batch_size: int = 16  # questions per step (the paper's effective batch)
    lr: float = 1e-2  # learning rate for the small guide networks
    optimizer: str = "adamw"  # "adamw" (VMoER App. D.2) or "adam"
    weight_decay: float = 0.01  # AdamW's decoupled weight decay (pulls q towards the prior)
    path: ELBOPath = ELBOPath.FUSED  # fused is the fast path; reference is the spec
    estimator: str = "pathwise"  # fused path: "pathwise" (paper) or "score-function" (swaps)
    seed: int = 0  # fixes minibatch order and every draw
    clip_norm: float | None = 10.0  # gradient clipping of guide parameters, None for off
    schedule: str = "cosine"  # "cosine" (VMoER App. D.2: cosine decay with warm-up) or "constant"
    warmup_ratio: float = 0.05  # fraction of steps with linear warm-up (cosine schedule)
    progress: bool = True  # tqdm bar
    eval_every: int = 0  # validate every N steps (needs val_data); 0: only at the end
    patience: int | None = None  # stop after N validations without improvement; None: never
    val_samples: int = 8  # S of the MC validation NLL
    val_mode: str = "mc"  # validation prediction mode: "mc" or "analytic" (no MC noise)
    val_link: str = "second-order"  # link approximation of the analytic mode
    checkpoint_dir: str | None = None  # save the whole training state here (resumable)
    checkpoint_every: int = 10  # steps between checkpoints (also written at each validation)
    resume: bool = True  # continue from checkpoint_dir's state when there is one
    shards: int = 1  # micro-batches per step; under torch.distributed a multiple of the world size
    group_by_length: str = "auto"  # fused path: each shard in passes of similar length (CPU: auto)
    diagnostics: bool = True  # per-step router statistics (fused path; infer/diagnostics.py)
    context: dict | None = None  # what else defines the fit (model, data, β, prior); resume checks
    min_init_overlap: float = 0.9  # warn when the first step's top-K overlap is below this


def lr_factor(cfg: SVIConfig) -> Callable[[int], float]:
    """Multiplier of the learning rate at each step (``LambdaLR``): cosine with warm-up, or 1."""
    if cfg.schedule == "constant":
        return lambda step: 1.0
    if cfg.schedule != "cosine":
        raise ValueError(f"schedule={cfg.schedule!r}: use 'cosine' or 'constant'")
    warm = max(1, int(cfg.warmup_ratio * cfg.num_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, cfg.num_steps - warm)))

    return factor


def steps_for_epochs(epochs: float, n: int, batch_size: int) -> int:
    """Optimiser steps of ``epochs`` passes over ``n`` rows in batches of ``batch_size``."""
    if not epochs > 0:
        raise ValueError(f"epochs={epochs!r}: must be > 0")
    return max(1, math.ceil(epochs * math.ceil(n / min(batch_size, n))))


def make_optimizer(cfg: SVIConfig, params: Sequence[torch.Tensor]) -> torch.optim.Optimizer:
    """AdamW (the paper's) or Adam over the guide's parameters."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer={cfg.optimizer!r}: use 'adamw' or 'adam'")


def fingerprint(cfg: SVIConfig, n: int) -> dict:
    """The settings a checkpoint must share with the run that resumes it."""
    keys = (
        "num_steps",
        "batch_size",
        "lr",
        "optimizer",
        "weight_decay",
        "estimator",
        "path",
        "seed",
        "schedule",
        "warmup_ratio",
        "shards",
        "group_by_length",
    )
    extra = {f"context.{k}": str(v) for k, v in (cfg.context or {}).items()}
    return {"n": n, **{k: str(getattr(cfg, k)) for k in keys}, **extra}


def check_resumable(state: dict, cfg: SVIConfig, n: int) -> None:
    """Refuse to resume a checkpoint written with other settings or data."""
    want, got = fingerprint(cfg, n), state.get("fingerprint", {})
    default = fingerprint(SVIConfig(), n)  # settings added later: absent means their default
    got = {**{k: v for k, v in default.items() if k not in got}, **got}
    diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    if diff:
        raise ValueError(
            f"the checkpoint in {cfg.checkpoint_dir} was written with other settings "
            f"(saved, now): {diff}; use the same settings, another checkpoint_dir, or resume=False"
        )
