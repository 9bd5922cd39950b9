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
from vmoer_ppl.pipeline.backbone import adapted, stage_rows, suffix_data, svi_sets
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.fit_family import fit_family
from vmoer_ppl.pipeline.loading import load_model, model_fingerprint
from vmoer_ppl.pipeline.machine import machine
from vmoer_ppl.pipeline.plots import plot_fit_diagnostics
from vmoer_ppl.pipeline.run_data import encode_sets
from vmoer_ppl.pipeline.run_dir import FIT_FILE, RUN_FILE, prepare_run_dir, scorer_kwargs, strip
from vmoer_ppl.pipeline.validate import validate_config
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
    rank, size = init_from_env()
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
    families = fit_each(cfg, model, enc, kwargs, ids, (rank, size), timings)
    timings["total_s"] = time.perf_counter() - t0
    result = {"run": run, "families": families, "timings": timings, "machine": machine()}
    if rank == 0:
        write_text(out / FIT_FILE, json.dumps(result, indent=2))
    barrier()
    return result


def fit_each(cfg: FitConfig, model, enc: dict, kwargs: dict, ids: dict, world, timings) -> dict:
    """Fit every family of ``cfg`` on the frozen-prefix inputs (computed once); their records.

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
    dict
        Family -> its ``fit.json`` record.
    """
    (rank, size), out = world, Path(cfg.out)
    num_data = len(stage_rows(cfg, enc["train"], stage=2)["labels"])
    build = {"layers": cfg.layers, "beta": cfg.beta, "num_data": num_data}
    build.update(trunk_dim=cfg.trunk_dim, **kwargs)
    t = time.perf_counter()
    bm, _ = bayesianize(model, family=cfg.families[0], **build)
    data = {k: strip(v) for k, v in suffix_data(bm.net, svi_sets(cfg, enc), model).items()}
    timings["frozen_prefix_s"] = time.perf_counter() - t
    shards = size * -(-cfg.svi.shards // size)  # a multiple of the process count
    families, memo = {}, {}
    for family in cfg.families:
        t = time.perf_counter()
        families[family] = fit_family(
            cfg,
            family,
            model,
            data,
            build,
            out,
            shards=shards,
            is_main=rank == 0,
            identity=ids,
            memo=memo,
        )
        if rank == 0:
            plot_fit_diagnostics(families[family], family, out / "plots" / f"fit_{family}.png")
        timings[f"fit_{family}_s"] = time.perf_counter() - t
    return families
