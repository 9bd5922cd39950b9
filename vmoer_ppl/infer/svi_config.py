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

from vmoer_ppl.settings import opt


class ELBOPath(str, Enum):
    """Which estimator computes the loss."""

    REFERENCE = "reference"
    """Pyro ``TraceMeanField_ELBO``: model and guide each run the network (the spec)."""
    FUSED = "fused"
    """One network pass with analytic KLs added at each router (same value and gradients)."""


@dataclass
class SVIConfig:
    """Settings of :func:`fit_svi` (a run's ``svi`` section; ``runtime`` ones it sets per fit)."""

    num_steps: int = opt(
        200, "SVI steps per fit (upper bound with early stopping)", flag="svi_steps"
    )
    epochs: float | None = opt(
        None, "passes over the train split; replaces svi_steps when set", flag="svi_epochs"
    )
    batch_size: int = opt(16, "questions per SVI step (the paper's effective batch)")
    lr: float = opt(1e-2, "learning rate of the guide")
    optimizer: str = opt("adamw", '"adamw" (VMoER App. D.2) or "adam"')
    weight_decay: float = opt(0.01, "decoupled weight decay of the guide (pulls q to the prior)")
    path: ELBOPath = opt(
        ELBOPath.FUSED, "fused (one pass) or reference (Pyro's ELBO: the spec)", runtime=True
    )
    estimator: str = opt(
        "pathwise", 'gradient through top-K: "pathwise" (paper) or "score-function"'
    )
    seed: int = opt(0, "minibatch order and every draw", runtime=True)
    clip_norm: float | None = opt(10.0, "gradient-norm clipping of the guide (None: off)")
    schedule: str = opt("cosine", '"cosine" with warm-up (VMoER App. D.2) or "constant"')
    warmup_ratio: float = opt(0.05, "fraction of the steps in linear warm-up (cosine)")
    progress: bool = opt(True, "progress bar", runtime=True)
    eval_every: int = opt(0, "steps between validations (0: only at the end)")
    patience: int | None = opt(
        None, "validations without improvement before stopping (None: never)"
    )
    val_samples: int | None = opt(
        8, "S of the validation NLL (a run's None: its prediction S, num_samples)"
    )
    val_mode: str = opt("mc", 'validation prediction: "mc" or "analytic"', runtime=True)
    val_link: str = opt("second-order", "the analytic mode's link", runtime=True)
    checkpoint_dir: str | None = opt(None, "training state saved here", runtime=True)
    checkpoint_every: int = opt(10, "steps between checkpoints (also at each validation)")
    resume: bool = opt(True, "continue from checkpoint_dir's state", runtime=True)
    shards: int = opt(1, "micro-batches per SVI step; under torchrun at least the process count")
    group_by_length: str = opt(
        "auto", 'steps in passes of similar length: "auto" (on CPU), "on", "off"'
    )
    diagnostics: bool = opt(True, "per-step router statistics (infer/diagnostics.py)", runtime=True)
    context: dict | None = opt(
        None, "what else defines the fit (model, data, beta, prior); resume checks", runtime=True
    )
    min_init_overlap: float = opt(0.9, "warn when the first step's top-K overlap is below this")


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
