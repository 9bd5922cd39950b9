"""Stage 2 for one router family: its prior in the router's units, SVI over a learning-rate grid.

The prior scale of the logit families is ``absolute`` (``s``) or ``relative`` (``s_ℓ = c ×`` the
median logit spread of router ℓ on train questions, :mod:`vmoer_ppl.priors.relative`). Each
learning rate of the grid is fitted from the same initial guide with early stopping on validation
NLL; the one with the lowest validation NLL is kept (the test split is never seen here).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import torch

from vmoer_ppl.bayesianize import bayesianize
from vmoer_ppl.data.tensors import first_rows
from vmoer_ppl.families import family_of
from vmoer_ppl.infer.diagnostics import posterior_summary
from vmoer_ppl.infer.svi import fit_svi
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.tracking import TrackerLog, open_trackers
from vmoer_ppl.priors.relative import logit_spread, parse_prior_scale, relative_prior

log = logging.getLogger(__name__)

#: Train questions on which the relative prior's logit spread is measured.
SPREAD_QUESTIONS = 64
#: Validation questions of the kept guide's posterior summary (a diagnostic, not a selection).
SUMMARY_QUESTIONS = 64


def family_prior(cfg: FitConfig, family: str, bm, train: dict, memo: dict | None = None):
    """The prior of ``family`` under ``cfg.prior_scale`` and what it was derived from.

    Parameters
    ----------
    cfg : FitConfig
        ``prior_scale``: ``"relative:C"``, ``"absolute:S"``, a number, or None.
    family : str
        Router family; only the logit families take ``prior_scale``.
    bm : RouterModel
        A model of the family built on the backbone (its sites are measured).
    train : dict
        Train inputs (the first :data:`SPREAD_QUESTIONS` rows are used).
    memo : dict, optional
        Shared by the families of one run: the logit spread (a property of the deterministic
        routers, the same for every family) is measured once.

    Returns
    -------
    tuple
        ``(prior or None, record)``; None keeps the family's default prior.
    """
    parsed = parse_prior_scale(cfg.prior_scale)
    if parsed is None or not family_of(family).model_cls.logit_scale_prior:
        return None, {"rule": "default"}
    kind, value = parsed
    if kind == "absolute":
        return value, {"rule": "absolute", "scale": value}
    spreads = shared_spread(cfg, bm, train, memo)
    scales = {k: value * v for k, v in spreads.items()}
    log.info("%s: relative prior c=%g, logit spread %s -> s %s", family, value, spreads, scales)
    return relative_prior(spreads, value), {
        "rule": "relative",
        "c": value,
        "logit_spread": spreads,
        "scale": scales,
    }


def shared_spread(cfg: FitConfig, bm, train: dict, memo: dict | None = None) -> dict:
    """Router name -> median logit spread on the first train rows, measured once per ``memo``.

    A property of the deterministic routers: any family's model ``bm`` of the run's layers
    measures the same (:func:`~vmoer_ppl.priors.relative.logit_spread`).
    """
    memo = {} if memo is None else memo
    if "logit_spread" not in memo:
        probe = first_rows(train, SPREAD_QUESTIONS)
        memo["logit_spread"] = logit_spread(bm, probe, batch_size=cfg.svi.batch_size)
    return memo["logit_spread"]


def fit_family(
    cfg: FitConfig,
    family: str,
    backbone,
    data: dict,
    build: dict,
    out: Path,
    *,
    shards: int = 1,
    is_main: bool = True,
    progress: bool | None = None,
    identity: dict | None = None,
    memo: dict | None = None,
) -> dict:
    """Fit one family over the learning-rate grid; save the best adapter; return its record.

    Parameters
    ----------
    cfg : FitConfig
        The run's settings.
    family : str
        Router family.
    backbone : nn.Module
        The (stage-1 adapted) frozen model.
    data : dict
        ``{"train": ..., "val": ...}`` network inputs with labels.
    build : dict
        Keyword arguments of :func:`bayesianize` (layers, β, scorer, ...).
    out : Path
        The run directory (adapters and checkpoints go below it).
    shards : int
        Micro-batches per SVI step.
    is_main : bool
        This process shows progress and writes the adapter (rank 0).
    progress : bool, optional
        Show the SVI progress bar (default: ``is_main``; a worker process shows none).
    identity : dict, optional
        What identifies the run's model and data (``run.json``'s weight fingerprint and set
        hashes); a resume checks it with the fit's settings.
    memo : dict, optional
        What the families of one run share (:func:`family_prior`).

    Returns
    -------
    dict
        The family's entry of ``fit.json``: the kept run's histories and diagnostics, the prior
        record, every learning rate's best validation NLL, and ``posterior``: the kept guide's
        statistics against the prior on the first :data:`SUMMARY_QUESTIONS` validation questions
        (KL, log σ/s, Δμ/s, overlap).
    """
    run = dict(shards=shards, is_main=is_main, identity=identity, memo=memo)
    run["progress"] = is_main if progress is None else progress
    best, prior_grid = fit_prior_grid(cfg, family, backbone, data, build, out, run)
    _, lr, res, bm, guide, tried, prior_record = best
    if is_main:
        guide.save_pretrained(out / "adapters" / family, overwrite=True)
    return {
        "lr": lr,
        "lr_grid": tried,
        "prior": prior_record,
        "prior_grid": prior_grid,  # candidate -> best validation NLL (one entry unless auto)
        "losses": res.losses,
        "val_history": res.val_history,
        "best_step": res.best_step,
        "stopped_early": res.stopped_early,
        "resumed_from": res.resumed_from,
        "diagnostics": res.diagnostics,
        "posterior": posterior_summary(
            bm, guide, first_rows(data["val"], SUMMARY_QUESTIONS), cfg.svi.batch_size
        ),
    }


def fit_prior_grid(
    cfg: FitConfig, family: str, backbone, data: dict, build: dict, out: Path, run: dict
) -> tuple[tuple, dict[str, float]]:
    """Fit the learning-rate grid at each prior-scale candidate; keep the best validation NLL.

    Parameters
    ----------
    cfg, family, backbone, data, build, out
        As for :func:`fit_family`.
    run : dict
        ``shards``, ``is_main``, ``identity``, ``memo`` of :func:`fit_family`.

    Returns
    -------
    tuple
        The kept fit (:func:`fit_lr_grid`'s tuple) and ``{candidate: best validation NLL}``.
    """
    candidates = prior_candidates(cfg.prior_scale, family)
    best, prior_grid = None, {}
    for scale in candidates:
        sub = out / "checkpoints" / family / f"prior-{scale}" if len(candidates) > 1 else None
        fitted = fit_lr_grid(
            replace(cfg, prior_scale=scale),
            family,
            backbone,
            data,
            build,
            out,
            run={**run, "checkpoint_dir": sub},
        )
        prior_grid[str(scale)] = fitted[0]
        if best is None or fitted[0] < best[0]:
            best = fitted
    assert best is not None  # prior_candidates returns at least one
    if len(candidates) > 1:
        log.info("%s: prior scale by validation NLL %s -> %s", family, prior_grid, best[-1])
    return best, prior_grid


#: Candidates of ``--prior-scale auto`` (relative multiples of each router's logit spread).
AUTO_SCALES = ("relative:0.25", "relative:0.5", "relative:1", "relative:2")


def prior_candidates(prior_scale: str | None, family: str) -> tuple:
    """The prior scales to fit: ``auto`` -> :data:`AUTO_SCALES` (logit families), else one.

    ``auto:C1,C2,...`` gives the relative multiples to try.
    """
    text = str(prior_scale) if prior_scale is not None else ""
    if not text.startswith("auto"):
        return (prior_scale,)
    if not family_of(family).model_cls.logit_scale_prior:
        return (None,)  # only the logit families take a prior scale
    values = text.partition(":")[2]
    return tuple(f"relative:{v}" for v in values.split(",")) if values else AUTO_SCALES


def fit_lr_grid(
    cfg: FitConfig, family: str, backbone, data: dict, build: dict, out: Path, *, run: dict
) -> tuple:
    """Fit one prior scale (``cfg.prior_scale``) over the learning-rate grid.

    Parameters
    ----------
    cfg, family, backbone, data, build, out
        As for :func:`fit_family`.
    run : dict
        ``shards``, ``is_main``, ``progress``, ``identity``, ``memo`` (as for
        :func:`fit_family`) and
        ``checkpoint_dir`` (None: ``out/checkpoints/<family>``).

    Returns
    -------
    tuple
        ``(best val NLL, lr, SVIResult, model, guide, {lr: val NLL}, prior record)``.
    """
    torch.manual_seed(cfg.seed)
    bm, _ = bayesianize(backbone, family=family, **build)
    prior, prior_record = family_prior(cfg, family, bm, data["train"], run.get("memo"))
    grid = tuple(cfg.lr_grid) or (cfg.svi.lr,)
    shards, is_main, identity = run["shards"], run["is_main"], run["identity"]
    best, tried = None, {}
    ckpt = run["checkpoint_dir"] or out / "checkpoints" / family
    context = {
        "family": family,
        **(identity or {}),
        "beta": cfg.beta,
        "prior": json.dumps(prior_record, sort_keys=True),
        "build": json.dumps({k: str(v) for k, v in build.items()}, sort_keys=True),
    }
    for lr in grid:
        torch.manual_seed(cfg.seed)  # every learning rate starts from the same guide
        bm, guide = bayesianize(backbone, family=family, prior=prior, **build)
        bm.spec["prior_scale"] = prior_record
        svi = cfg.svi_config(
            lr=lr,
            checkpoint_dir=str(ckpt / f"lr{lr:g}" if len(grid) > 1 else ckpt),
            shards=shards,
            progress=run.get("progress", is_main),
            context=context,
        )
        run_name = family + (f"-{cfg.prior_scale}" if run["checkpoint_dir"] else "")
        run_name += f"-lr{lr:g}" if len(grid) > 1 else ""
        tracker = TrackerLog(open_trackers(cfg.log_with, run_name, out / "logs") if is_main else [])
        try:
            res = fit_svi(bm, guide, data["train"], svi, val_data=data["val"], track=tracker)
        finally:
            tracker.finish()
        score = min((v for _, v in res.val_history), default=float("inf"))
        tried[f"{lr:g}"] = score
        if best is None or score < best[0]:
            best = (score, lr, res, bm, guide)
    return (*best, tried, prior_record)
