"""``fit_svi``: train a router guide against the frozen network.

Two estimators of the same objective (DESIGN.md): the Pyro reference path (``TraceMeanField_ELBO``,
one particle; the spec) and the fused single-pass path (the fast path). Built on
``TraceMeanField_ELBO()(model, guide)`` with ``torch.optim`` over the guide's own parameters
(STYLE rule 18); nothing goes through Pyro's global param store, which is checked to stay empty.

Training is :class:`SVI`'s ``init`` / ``step`` / ``run`` over an explicit :class:`SVIState`
(NumPyro's ``SVI`` is the anchor): one small step; checkpoints, validation, early stopping and
logging wrap it (:class:`~vmoer_ppl.infer.svi_watch.Watch`); sharding is a choice of gradient.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from vmoer_ppl.data.tensors import batch_at, subset
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.infer import kl as _kl  # noqa: F401  (registers the MVN-Independent KL)
from vmoer_ppl.infer.checkpoint import load_state
from vmoer_ppl.infer.diagnostics import Recorder
from vmoer_ppl.infer.early_stop import EarlyStopping, validation_nll
from vmoer_ppl.infer.freeze import check_no_active_checkpointing, check_only_guide_trains
from vmoer_ppl.infer.fused import fused_loss
from vmoer_ppl.infer.micro_batches import row_groups, use_length_groups
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
from vmoer_ppl.infer.svi_checks import (
    check_finite,
    check_gate_gradient,
    check_init_overlap,
    diverged,
    step_record,
)
from vmoer_ppl.infer.svi_config import (
    ELBOPath,
    SVIConfig,
    check_resumable,
    lr_factor,
    make_optimizer,
    steps_for_epochs,
)
from vmoer_ppl.infer.svi_state import SVIState
from vmoer_ppl.infer.svi_watch import Watch
from vmoer_ppl.models.base import RouterModel

log = logging.getLogger(__name__)

__all__ = [
    "SVI",
    "ELBOPath",
    "SVIConfig",
    "SVIResult",
    "SVIState",
    "batch_at",
    "check_data",
    "fit_svi",
    "make_optimizer",
    "steps_for_epochs",
]


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


def objective(
    model: RouterModel, guide: RouterGuide, cfg: SVIConfig
) -> tuple[Callable[..., torch.Tensor], list[torch.Tensor]]:
    """The loss of one minibatch (``loss(**batch) -> ()``) and the parameters it trains."""
    if ELBOPath(cfg.path) is ELBOPath.REFERENCE:
        if cfg.estimator != "pathwise":
            raise ValueError(
                "the score-function estimator runs on the fused path; set path='fused'"
            )
        elbo = TraceMeanField_ELBO(max_plate_nesting=2)(model, guide)
        return elbo, list(elbo.parameters())
    loss = functools.partial(fused_loss, model, guide, estimator=cfg.estimator)
    return cast(Callable[..., torch.Tensor], loss), list(guide.parameters())


class SVI:
    """Stochastic variational inference of a router guide: :meth:`init`, :meth:`step`, :meth:`run`.

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
    """

    def __init__(
        self,
        model: RouterModel,
        guide: RouterGuide,
        data: Mapping[str, torch.Tensor],
        cfg: SVIConfig | None = None,
    ) -> None:
        cfg = cfg or SVIConfig()
        self.n = check_data(data)
        if cfg.epochs is not None:
            cfg = replace(cfg, num_steps=steps_for_epochs(cfg.epochs, self.n, cfg.batch_size))
        self.model, self.guide, self.data, self.cfg = model, guide, data, cfg
        self.path = ELBOPath(cfg.path)
        self.loss, self.params = objective(model, guide, cfg)
        check_only_guide_trains(model.net, guide, self.params)
        check_gate_gradient(model, cfg.estimator)
        check_no_active_checkpointing(model.net)
        self.sharded = cfg.shards > 1 or world()[1] > 1
        if self.sharded and self.path is not ELBOPath.FUSED:
            raise ValueError("sharded / data-parallel SVI runs the fused path; set path='fused'")
        self.record = cfg.diagnostics and self.path is ELBOPath.FUSED
        device = next(model.net.parameters()).device
        grouping = use_length_groups(cfg.group_by_length, device)
        self.grouped = grouping and self.path is ELBOPath.FUSED

    def init(self) -> SVIState:
        """A fresh training state, or the checkpoint's when ``cfg.resume`` finds one."""
        optim = make_optimizer(self.cfg, self.params)
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_factor(self.cfg))
        state = SVIState(self.guide, optim, sched, EarlyStopping(self.cfg.patience))
        directory = self.cfg.checkpoint_dir
        saved = load_state(directory) if directory and self.cfg.resume else None
        if saved is not None:
            check_resumable(saved, self.cfg, self.n)
            state.load_state_dict(saved)
            log.info("resuming SVI from %s at step %d", directory, state.step)
        return state

    def step(self, state: SVIState) -> dict:
        """One optimiser step on the minibatch of ``state.step``; returns the step's record.

        The record is a :attr:`SVIResult.diagnostics` entry when diagnostics are on, else
        ``{"loss": x}``.
        """
        state.optim.zero_grad()
        idx = batch_at(state.step, self.n, min(self.cfg.batch_size, self.n), self.cfg.seed)
        recorder = Recorder() if self.record else None
        value = self.gradient(idx, recorder, state)
        clip = self.cfg.clip_norm if self.cfg.clip_norm is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        lr = state.lr
        check_finite(value, grad_norm, state.step, lr)
        state.optim.step()
        state.sched.step()
        record: dict = {"loss": value}
        if recorder is not None:
            record = step_record(state.step, value, recorder, grad_norm, lr)
            state.diagnostics.append(record)
            if state.step == 0:
                check_init_overlap(record, self.cfg.min_init_overlap, self.model)
        state.losses.append(value)
        state.step += 1
        return record

    def gradient(self, idx: torch.Tensor, recorder: Recorder | None, state: SVIState) -> float:
        """Backpropagate the loss of rows ``idx`` (over shards and passes); returns its value."""
        rec = {"recorder": recorder} if recorder is not None else {}
        try:
            if self.sharded or self.grouped:
                return self.sharded_gradient(idx, rec, state.step)
            loss = self.loss(**rec, **subset(self.data, idx))
            loss.backward()
            return loss.item()
        except ValueError as err:  # a distribution refusing an inf/NaN parameter
            if "Expected parameter" not in str(err):
                raise
            what = "the guide's outputs became inf/NaN"
            raise FloatingPointError(diverged(what, state.step, state.lr)) from err

    def passes(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """``rows`` cut into passes of similar length (:mod:`~vmoer_ppl.infer.micro_batches`)."""
        return row_groups(self.data, rows, self.grouped)

    def sharded_gradient(self, idx: torch.Tensor, rec: dict, step: int) -> float:
        """Gradients of this process's shards of the batch, summed over processes.

        Each shard runs in :meth:`passes`; a pass carries its share of the global latents' KL.
        """
        shards = self.cfg.shards
        norm = ShardNorm(len(idx), count_tokens(self.model, subset(self.data, idx)), shards)
        value = 0.0
        for k in local_shards(shards):
            if self.sharded:
                seed_shard(self.cfg.seed, step, k)
            parts = self.passes(shard_rows(idx, k, shards))
            part_norm = replace(norm, shards=shards * len(parts))
            for rows in parts:
                loss = self.loss(norm=part_norm, **rec, **subset(self.data, rows))
                loss.backward()
                value += loss.item()
        all_reduce_grads(self.params)
        return all_reduce_sum(value)

    def run(self, state: SVIState, watch: Watch) -> SVIResult:
        """Step until ``cfg.num_steps`` or early stopping, with ``watch`` around each step."""
        store_before = set(pyro.get_param_store().keys())
        watch.start()
        while not state.done and state.step < self.cfg.num_steps:
            watch.after_step(self.step(state))
        watch.finish()
        if set(pyro.get_param_store().keys()) - store_before:
            raise RuntimeError("the guide registered parameters in Pyro's global param store")
        last = state.losses[-1] if state.losses else np.nan
        log.info("SVI done: %d steps, final loss %.4f", len(state.losses), last)
        return self.result(state)

    def result(self, state: SVIState) -> SVIResult:
        """The :class:`SVIResult` of a finished state."""
        stopper = state.stopper
        return SVIResult(
            {k: v.detach().clone() for k, v in self.guide.state_dict().items()},
            state.losses,
            self.guide,
            val_history=list(stopper.history),
            best_step=stopper.best_step if stopper.best_state is not None else None,
            stopped_early=state.step < self.cfg.num_steps,
            resumed_from=state.resumed_from,
            diagnostics=state.diagnostics,
        )


def default_validation(
    model: RouterModel, guide: RouterGuide, val_data: Mapping[str, torch.Tensor], cfg: SVIConfig
) -> Callable[[], float]:
    """Validation NLL at the configured S, mode and link, on its own random stream."""
    check_data(val_data)
    if cfg.val_samples is None:
        raise ValueError("SVIConfig.val_samples is None: give the S of the validation NLL")
    return functools.partial(
        validation_nll,
        model,
        guide,
        val_data,
        num_samples=cfg.val_samples,
        seed=cfg.seed,
        mode=cfg.val_mode,
        link=cfg.val_link,
    )


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
    svi = SVI(model, guide, data, cfg)
    if validate is None and val_data is not None:
        validate = default_validation(model, guide, val_data, svi.cfg)
    pyro.set_rng_seed(svi.cfg.seed)
    state = svi.init()
    desc = f"SVI ({svi.path.value})"
    return svi.run(state, Watch(svi.cfg, svi.n, state, validate, track, callback, desc))
