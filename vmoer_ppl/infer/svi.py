"""``fit_svi``: train a router guide against the frozen network.

Two estimators of the same objective (DESIGN.md): the Pyro reference path (``TraceMeanField_ELBO``,
one particle; the spec) and the fused single-pass path (the fast path). Built on
``TraceMeanField_ELBO()(model, guide)`` with ``torch.optim`` over the guide's own parameters
(STYLE rule 18); nothing goes through Pyro's global param store, which is checked to stay empty.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import cast

import numpy as np
import pyro
import torch
from pyro.infer import TraceMeanField_ELBO
from tqdm.auto import tqdm

from vmoer_ppl.data.tensors import subset
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.infer import kl as _kl  # noqa: F401  (registers the MVN-Independent KL)
from vmoer_ppl.infer.checkpoint import load_state, save_state
from vmoer_ppl.infer.diagnostics import Recorder, step_scalars
from vmoer_ppl.infer.early_stop import EarlyStopping, validation_nll
from vmoer_ppl.infer.freeze import check_no_active_checkpointing, check_only_guide_trains
from vmoer_ppl.infer.fused import fused_loss
from vmoer_ppl.infer.sharding import (
    ShardNorm,
    all_reduce_grads,
    all_reduce_sum,
    count_tokens,
    local_shards,
    seed_shard,
    shard_rows,
    world,
)
from vmoer_ppl.models.base import RouterModel

log = logging.getLogger(__name__)


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
    diagnostics: bool = True  # per-step router statistics (fused path; infer/diagnostics.py)
    context: dict | None = None  # what else defines the fit (model, data, β, prior); resume checks
    min_init_overlap: float = 0.9  # warn when the first step's top-K overlap is below this


@dataclass
class SVIResult:
    """What :func:`fit_svi` returns.

    Attributes
    ----------
    params : dict of str to torch.Tensor
        Trained guide parameters (``guide.state_dict()`` detached).
    losses : list of float
        Loss per step.
    guide : RouterGuide
        The trained guide (the best one at validation when ``val_data`` was given).
    val_history : list of (int, float)
        (step, validation NLL) at every validation.
    best_step : int or None
        Step of the lowest validation NLL, whose parameters were restored.
    stopped_early : bool
        Whether patience ran out before ``num_steps``.
    resumed_from : int or None
        Step at which a checkpoint was picked up.
    diagnostics : list of dict
        Per step: ``step``, ``loss``, ``nll``, ``grad_norm``, ``lr`` and ``routers`` (router
        name -> KL, mean/std of log σ/s, mean |Δμ|/s, top-K overlap; fused path only).
    """

    params: dict[str, torch.Tensor]
    losses: list[float] = field(default_factory=list)
    guide: RouterGuide | None = None
    val_history: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    stopped_early: bool = False
    resumed_from: int | None = None
    diagnostics: list[dict] = field(default_factory=list)


def batch_at(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Row indices of the minibatch at ``step``: a pure function of (seed, step), so resumable.

    Every row appears once per epoch (the last batch of an epoch is shorter); each epoch has its
    own seeded permutation.

    Parameters
    ----------
    step : int
        Optimiser step (0-based).
    n : int
        Data-set size N.
    batch_size : int
        Rows per batch.
    seed : int
        Seed of the permutations.

    Returns
    -------
    torch.Tensor
        `(batch_size,)` or shorter int64 row indices.
    """
    per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)[pos * batch_size : (pos + 1) * batch_size]


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


def check_data(data: Mapping[str, torch.Tensor]) -> int:
    """Validate an SVI data dict and return its size N."""
    if "labels" not in data or len(data) < 2:
        raise ValueError(
            "data needs 'labels' and the network's inputs ('input_ids', optionally "
            f"'attention_mask', or a scorer's inputs); got {list(data)}"
        )
    n = data["labels"].shape[0]
    bad = {k: tuple(v.shape) for k, v in data.items() if v is not None and v.shape[0] != n}
    if bad:
        raise ValueError(f"every tensor in data needs {n} rows; mismatched: {bad}")
    return n


def fit_svi(
    model: RouterModel,
    guide: RouterGuide,
    data: Mapping[str, torch.Tensor],
    cfg: SVIConfig | None = None,
    *,
    val_data: Mapping[str, torch.Tensor] | None = None,
    validate: Callable[[], float] | None = None,
    callback: Callable[[int, float], None] | None = None,
    track: Callable[[dict, int], None] | None = None,
) -> SVIResult:
    """Fit the guide by stochastic variational inference; the network stays frozen.

    With ``val_data`` the validation NLL is measured every ``cfg.eval_every`` steps (and before
    the first step when ``eval_every`` > 0) and at the end; the guide ends at the parameters of
    the best validation, the initial guide included (early stopping with ``cfg.patience``).
    With ``cfg.checkpoint_dir`` the whole training state is saved every ``cfg.checkpoint_every``
    steps and at each validation, and a later call with the same settings resumes from it: a run
    killed at any point and resumed ends with exactly the parameters of an uninterrupted run.

    Parameters
    ----------
    model : RouterModel
        The Pyro model, e.g. from :func:`vmoer_ppl.bayesianize`.
    guide : RouterGuide
        Its guide.
    data : mapping of str to torch.Tensor
        ``input_ids`` `(N, T)`, ``labels`` `(N,)`, optional ``attention_mask`` `(N, T)`.
    cfg : SVIConfig, optional
        Steps, batch size, learning rate, ELBO path, validation and checkpoints.
    val_data : mapping of str to torch.Tensor, optional
        Validation questions, same keys as ``data``.
    validate : callable, optional
        ``() -> float`` replacing the default validation metric (lower is better).
    callback : callable, optional
        ``(step, loss) -> None`` after every optimiser step.
    track : callable, optional
        ``(scalars, step) -> None``: the step's flattened diagnostics (loss, NLL, gradient norm,
        lr, per-router KL, log σ/s, |Δμ|/s, overlap) after every step and ``{"val/nll": x}``
        at every validation, e.g. :class:`vmoer_ppl.pipeline.tracking.TrackerLog`.

    Returns
    -------
    SVIResult
        Trained parameters, the loss and validation histories.

    Examples
    --------
    >>> from vmoer_ppl import bayesianize
    >>> from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig
    >>> model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="logit-mf")
    >>> data = {"input_ids": torch.randint(32, (8, 5)), "labels": torch.randint(4, (8,))}
    >>> res = fit_svi(model, guide, data, SVIConfig(num_steps=2, progress=False))
    >>> len(res.losses)
    2
    """
    cfg = cfg or SVIConfig()
    n = check_data(data)
    if cfg.epochs is not None:
        cfg = replace(cfg, num_steps=steps_for_epochs(cfg.epochs, n, cfg.batch_size))
    if val_data is not None:
        check_data(val_data)
    path = ELBOPath(cfg.path)
    if validate is None and val_data is not None:
        validate = functools.partial(
            validation_nll,
            model,
            guide,
            val_data,
            num_samples=cfg.val_samples,
            seed=cfg.seed,
            mode=cfg.val_mode,
            link=cfg.val_link,
        )
    pyro.set_rng_seed(cfg.seed)
    store_before = set(pyro.get_param_store().keys())
    if path is ELBOPath.REFERENCE and cfg.estimator != "pathwise":
        raise ValueError("the score-function estimator runs on the fused path; set path='fused'")
    step_loss: Callable[..., torch.Tensor]
    if path is ELBOPath.REFERENCE:
        elbo = TraceMeanField_ELBO(max_plate_nesting=2)(model, guide)
        params = list(elbo.parameters())
        step_loss = elbo
    else:
        params = list(guide.parameters())
        step_loss = cast(
            Callable[..., torch.Tensor],
            functools.partial(fused_loss, model, guide, estimator=cfg.estimator),
        )
    check_only_guide_trains(model.net, guide, params)
    check_no_active_checkpointing(model.net)
    optim = make_optimizer(cfg, params)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_factor(cfg))
    stopper = EarlyStopping(cfg.patience)
    losses: list[float] = []
    diagnostics: list[dict] = []
    step, done, resumed = 0, False, None
    state = load_state(cfg.checkpoint_dir) if cfg.checkpoint_dir and cfg.resume else None
    if state is not None:
        check_resumable(state, cfg, n)
        guide.load_state_dict(state["guide"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        stopper.load_state_dict(state["stopper"])
        losses, step, done, resumed = state["losses"], state["step"], state["done"], state["step"]
        diagnostics = state.get("diagnostics", [])
        log.info("resuming SVI from %s at step %d", cfg.checkpoint_dir, step)

    def checkpoint(finished: bool = False) -> None:
        if cfg.checkpoint_dir and world()[0] == 0:
            save_state(
                cfg.checkpoint_dir,
                {
                    "guide": guide.state_dict(),
                    "optim": optim.state_dict(),
                    "sched": sched.state_dict(),
                    "stopper": stopper.state_dict(),
                    "losses": losses,
                    "diagnostics": diagnostics,
                    "step": step,
                    "done": finished,
                    "fingerprint": fingerprint(cfg, n),
                },
            )

    sharded = cfg.shards > 1 or world()[1] > 1
    if sharded and path is not ELBOPath.FUSED:
        raise ValueError("sharded / data-parallel SVI runs the fused path; set path='fused'")
    mine = local_shards(cfg.shards) if sharded else []
    is_main = world()[0] == 0
    bs = min(cfg.batch_size, n)
    bar = tqdm(
        total=cfg.num_steps,
        initial=step,
        desc=f"SVI ({path.value})",
        disable=not (cfg.progress and is_main),
    )

    def validation(at: int) -> bool:
        assert validate is not None
        done = stopper.update(at, validate(), guide)
        if track is not None:
            track({"val/nll": stopper.history[-1][1]}, at)
        return done

    if validate is not None and cfg.eval_every and step == 0 and not stopper.history:
        validation(0)  # the initial guide competes too
        bar.set_postfix(val=f"{stopper.history[-1][1]:.4f}", best=f"{stopper.best:.4f}")
    record = cfg.diagnostics and path is ELBOPath.FUSED
    while not done and step < cfg.num_steps:
        optim.zero_grad()
        idx = batch_at(step, n, bs, cfg.seed)
        rec = {"recorder": Recorder()} if record else {}
        if sharded:
            norm = ShardNorm(len(idx), count_tokens(model, subset(data, idx)), cfg.shards)
            value = 0.0
            for k in mine:
                seed_shard(cfg.seed, step, k)
                loss = step_loss(norm=norm, **rec, **subset(data, shard_rows(idx, k, cfg.shards)))
                loss.backward()
                value += loss.item()
            all_reduce_grads(params)
            value = all_reduce_sum(value)
        else:
            try:
                loss = step_loss(**rec, **subset(data, idx))
            except ValueError as err:  # a distribution refusing an inf/NaN parameter
                if "Expected parameter" not in str(err):
                    raise
                lr_now = optim.param_groups[0]["lr"]
                raise FloatingPointError(
                    diverged("the guide's outputs became inf/NaN", step, lr_now)
                ) from err
            loss.backward()
            value = loss.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            params, cfg.clip_norm if cfg.clip_norm is not None else float("inf")
        )
        lr_now = optim.param_groups[0]["lr"]
        check_finite(value, grad_norm, step, lr_now)
        optim.step()
        sched.step()
        if record:
            diagnostics.append(step_record(step, value, rec["recorder"], grad_norm, lr_now))
            if step == 0:
                check_init_overlap(diagnostics[0], cfg.min_init_overlap)
        losses.append(value)
        step += 1
        bar.update(1)
        if callback is not None:
            callback(step, losses[-1])
        if track is not None:
            track(step_scalars(diagnostics[-1] if record else {"loss": value}), step)
        validating = validate is not None and cfg.eval_every and step % cfg.eval_every == 0
        if validating:
            done = validation(step)
            bar.set_postfix(val=f"{stopper.history[-1][1]:.4f}", best=f"{stopper.best:.4f}")
        if validating or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            checkpoint()
    bar.close()
    if validate is not None and (not stopper.history or stopper.history[-1][0] != step):
        validation(step)
    if stopper.best_state is not None:
        guide.load_state_dict(stopper.best_state)
    checkpoint(finished=True)
    if set(pyro.get_param_store().keys()) - store_before:
        raise RuntimeError("the guide registered parameters in Pyro's global param store")
    log.info("SVI done: %d steps, final loss %.4f", len(losses), losses[-1] if losses else np.nan)
    params_out = {k: v.detach().clone() for k, v in guide.state_dict().items()}
    return SVIResult(
        params_out,
        losses,
        guide,
        val_history=list(stopper.history),
        best_step=stopper.best_step if stopper.best_state is not None else None,
        stopped_early=step < cfg.num_steps,
        resumed_from=resumed,
        diagnostics=diagnostics,
    )


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


def step_record(step: int, loss: float, recorder: Recorder, grad_norm, lr: float) -> dict:
    """One entry of :attr:`SVIResult.diagnostics` (the statistics of the pass before the update)."""
    return {
        "step": step + 1,
        "loss": loss,
        "nll": recorder.nll,
        "grad_norm": float(grad_norm),
        "lr": lr,
        "routers": recorder.summary(),
    }


def check_init_overlap(record: dict, threshold: float) -> None:
    """Log a warning when a draw of the initial ``q`` swaps many of the deterministic experts."""
    routers = record["routers"].items()
    low = {k: round(v["overlap"], 3) for k, v in routers if v["overlap"] < threshold}
    if low:
        log.warning(
            "at initialisation a routing draw keeps under %.2f of the deterministic top-K at %s: "
            "the prior is wide against these routers' logit spread, and training starts from "
            "swapped experts; use a relative prior scale (--prior-scale relative:C) or a "
            "smaller one",
            threshold,
            low,
        )


def check_finite(loss: float, grad_norm: torch.Tensor, step: int, lr: float) -> None:
    """Stop before a non-finite loss or gradient reaches the guide (nothing NaN is ever saved).

    Raises
    ------
    FloatingPointError
        Naming the step and the learning rate to lower.
    """
    if math.isfinite(loss) and bool(torch.isfinite(grad_norm)):
        return
    what = f"the loss became {loss}" if not math.isfinite(loss) else "the gradient became inf/NaN"
    raise FloatingPointError(diverged(what, step, lr))


def diverged(what: str, step: int, lr: float) -> str:
    """The message of a diverging fit: what happened, when, and the setting to change."""
    return (
        f"{what} at step {step}; lower the learning rate (--lr, now {lr:g}) or the prior "
        "scale, or check the data for empty questions"
    )


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
