"""``vmoer fit``: stage 1 (optional LoRA) and stage 2 (SVI of the routers) into a run directory.

A run directory holds ``config.json`` (the :class:`FitConfig`), ``run.json`` (model identity,
set sizes), ``stage1/`` (the LoRA adapter, when stage 1 ran), ``checkpoints/<family>/`` (the SVI
state: a killed run resumes from it when the same command is run again), ``adapters/<family>/``
(the trained router adapters) and ``fit.json`` (loss and validation histories, timings).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import torch

from vmoer_ppl.bayesianize import bayesianize
from vmoer_ppl.infer.sharding import barrier, init_from_env
from vmoer_ppl.pipeline.backbone import (
    adapted,
    check_layers,
    stage_rows,
    suffix_data,
    svi_sets,
)
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.fit_family import fit_family, shared_spread
from vmoer_ppl.pipeline.loading import load_model, model_fingerprint
from vmoer_ppl.pipeline.machine import machine
from vmoer_ppl.pipeline.paths import absolute_paths
from vmoer_ppl.pipeline.plots import plot_fit_diagnostics
from vmoer_ppl.pipeline.regime import fit_regime
from vmoer_ppl.pipeline.run_data import encode_sets
from vmoer_ppl.pipeline.run_dir import FIT_FILE, RUN_FILE, prepare_run_dir, scorer_kwargs, strip
from vmoer_ppl.pipeline.validate import validate_config
from vmoer_ppl.pipeline.workers import WORKER_MEMO, check_workers, run_tasks
from vmoer_ppl.safe_files import run_lock, write_text

log = logging.getLogger(__name__)


def run_fit(cfg: FitConfig) -> dict:
    """Fit every family of ``cfg`` and write the run directory.

    Parameters
    ----------
    cfg : FitConfig
        The run's settings.

    Returns
    -------
    dict
        The content of ``fit.json``: per family the loss and validation histories.
    """
    t0, timings = time.perf_counter(), {}
    validate_config(cfg)
    cfg = absolute_paths(cfg)  # config.json is read again from other directories
    rank, size = init_from_env()
    check_workers(cfg.placement.workers, size)
    with run_lock(cfg.out, "fit", create=True) if rank == 0 else contextlib.nullcontext():
        if rank == 0:
            prepare_run_dir(cfg)
        barrier()
        return fit_families(cfg, rank, size, t0, timings)


def fit_families(cfg: FitConfig, rank: int, size: int, t0: float, timings: dict) -> dict:
    """The body of :func:`run_fit` once the run directory is prepared and locked."""
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    model, tok, label = load_model(cfg)
    hashes: dict = {}
    enc, sizes, id_label = encode_sets(cfg, tok, hashes)
    timings["load_s"] = time.perf_counter() - t0
    check_layers(cfg, model, scorer_kwargs(cfg, tok, enc))
    t = time.perf_counter()
    model = adapted(cfg, out, model, tok, enc)
    timings["stage1_s"] = time.perf_counter() - t
    kwargs = scorer_kwargs(cfg, tok, enc)
    fp = model_fingerprint(model)
    run = {"model": label, "fingerprint": fp, "sizes": sizes, "id_set": id_label, **kwargs}
    run["data_hashes"], run["processes"] = hashes, size
    if rank == 0:
        write_text(out / RUN_FILE, json.dumps(run, indent=2))
    ids = {"model": fp, "data": f"{hashes['train']}:{hashes['val']}"}  # checked on resume
    families, regime = fit_each(cfg, model, enc, kwargs, ids, (rank, size), timings)
    timings["total_s"] = time.perf_counter() - t0
    result = {
        "run": run,
        "regime": regime,
        "families": families,
        "timings": timings,
        "machine": machine(family_workers(cfg)),
    }
    if rank == 0:
        write_text(out / FIT_FILE, json.dumps(result, indent=2))
    barrier()
    return result


def fit_each(
    cfg: FitConfig, model, enc: dict, kwargs: dict, ids: dict, world, timings
) -> tuple[dict, dict | None]:
    """Fit every family of ``cfg`` on the frozen-prefix inputs (computed once); their records.

    Before the first family, the deterministic model's validation regime is read from stage 1's
    measurement or measured (:func:`~vmoer_ppl.pipeline.regime.fit_regime`, rank 0 only) and
    logged, with a warning when it is under-confident.

    With ``cfg.placement.workers > 1`` (one process, no ``torchrun``) the families are fitted
    side by side in worker processes (:mod:`vmoer_ppl.pipeline.workers`), each reloading the
    backbone and the frozen-prefix states this process has just cached.

    Parameters
    ----------
    cfg : FitConfig
        The run's settings.
    model : nn.Module
        The backbone after stage 1.
    enc : dict
        Encoded sets (``train``, ``val``, ...).
    kwargs : dict
        The scorer's :func:`bayesianize` arguments.
    ids : dict
        Model and data identity, checked when a checkpoint resumes.
    world : tuple of int
        (rank, size) of this process.
    timings : dict
        Filled with ``frozen_prefix_s`` and ``fit_<family>_s``.

    Returns
    -------
    tuple
        Family -> its ``fit.json`` record; the regime (None on ranks other than 0).
    """
    rank, size = world
    t = time.perf_counter()
    build, data, bm = svi_inputs(cfg, model, enc, kwargs)
    timings["frozen_prefix_s"] = time.perf_counter() - t
    t = time.perf_counter()
    regime = fit_regime(Path(cfg.out), bm.net, data["val"]) if rank == 0 else None
    timings["regime_s"] = time.perf_counter() - t
    shards = size * -(-cfg.svi.shards // size)  # a multiple of the process count
    memo: dict = {}
    workers = family_workers(cfg)
    if workers > 1:
        if str(cfg.prior_scale).startswith(("relative", "auto")):
            shared_spread(cfg, bm, data["train"], memo)  # measured once, as in one process
        tasks = [(cfg, f, shards, ids, memo) for f in cfg.families]
        done = run_tasks(fit_family_task, tasks, workers, what="family fit")
        for family, (_, took) in zip(cfg.families, done, strict=True):
            timings[f"fit_{family}_s"] = took
        return {f: record for f, (record, _) in zip(cfg.families, done, strict=True)}, regime
    families = {}
    for family in cfg.families:
        t = time.perf_counter()
        inputs = (model, build, data)
        families[family] = fit_and_plot(cfg, family, inputs, shards, ids, memo, is_main=rank == 0)
        timings[f"fit_{family}_s"] = time.perf_counter() - t
    return families, regime


def family_workers(cfg: FitConfig) -> int:
    """Processes the families are fitted in: ``--workers``, at most one per family."""
    return min(cfg.placement.workers, len(cfg.families))


def fit_and_plot(
    cfg: FitConfig, family: str, inputs: tuple, shards: int, ids: dict, memo: dict, **how
) -> dict:
    """:func:`fit_family` on ``inputs = (backbone, build, data)``, then its diagnostics PNG.

    ``how``: ``is_main`` (default True: this process writes the adapter and the plot) and
    ``progress`` of :func:`fit_family`. Returns the family's ``fit.json`` record.
    """
    (model, build, data), out = inputs, Path(cfg.out)
    record = fit_family(
        cfg, family, model, data, build, out, shards=shards, identity=ids, memo=memo, **how
    )
    if how.get("is_main", True):
        plot_fit_diagnostics(record, family, out / "plots" / f"fit_{family}.png")
    return record


def svi_inputs(cfg: FitConfig, model, enc: dict, kwargs: dict) -> tuple[dict, dict, object]:
    """What every family's SVI starts from: ``bayesianize`` arguments and frozen-prefix inputs.

    Parameters
    ----------
    cfg, model, enc, kwargs
        As for :func:`fit_each`.

    Returns
    -------
    tuple
        ``(build, data, model)``: the :func:`bayesianize` keyword arguments, ``{"train", "val"}``
        network inputs (the frozen-prefix states attached, computed once and cached) and the
        first family's router model they were prepared with.
    """
    num_data = len(stage_rows(cfg, enc["train"], stage=2)["labels"])
    build = {"layers": cfg.layers, "beta": cfg.beta, "num_data": num_data}
    build.update(trunk_dim=cfg.trunk_dim, **kwargs)
    bm, _ = bayesianize(model, family=cfg.families[0], **build)
    data = {k: strip(v) for k, v in suffix_data(bm.net, svi_sets(cfg, enc), model).items()}
    return build, data, bm


def fit_family_task(cfg: FitConfig, family: str, shards: int, ids: dict, memo: dict) -> tuple:
    """One family's fit in a worker process (:func:`fit_each` with ``--workers``).

    The backbone, its stage-1 adapter (from the run directory) and the frozen-prefix states
    (from the cache) are loaded once per worker and checked against the run's fingerprint.

    Returns
    -------
    tuple
        ``(fit.json record, seconds)``.
    """
    t, out = time.perf_counter(), Path(cfg.out)
    key = ("fit", cfg.out, ids["model"])
    if key not in WORKER_MEMO:
        torch.manual_seed(cfg.seed)
        model, tok, _ = load_model(cfg)
        enc, _, _ = encode_sets(cfg, tok, {})
        model = adapted(cfg, out, model, tok)
        if model_fingerprint(model) != ids["model"]:
            raise RuntimeError(f"{out}: a worker loaded other weights than the run's")
        build, data, _ = svi_inputs(cfg, model, enc, scorer_kwargs(cfg, tok, enc))
        WORKER_MEMO.clear()
        WORKER_MEMO[key] = (model, build, data)
    record = fit_and_plot(cfg, family, WORKER_MEMO[key], shards, ids, dict(memo), progress=False)
    return record, time.perf_counter() - t
