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
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from vmoer_ppl.bayesianize import bayesianize
from vmoer_ppl.data.tensors import subset
from vmoer_ppl.embedded.build import cache_root
from vmoer_ppl.embedded.prefix_cache import SUFFIX_SAFE, cached_prefix_states
from vmoer_ppl.infer.sharding import barrier, init_from_env
from vmoer_ppl.pipeline.config import CONFIG_FILE, FitConfig
from vmoer_ppl.pipeline.fit_family import fit_family
from vmoer_ppl.pipeline.loading import load_model, model_fingerprint
from vmoer_ppl.pipeline.plots import plot_fit_diagnostics
from vmoer_ppl.pipeline.regime import measure_regime
from vmoer_ppl.pipeline.run_data import encode_sets
from vmoer_ppl.pipeline.stage1 import LoRASettings, adapt_backbone, apply_saved_lora
from vmoer_ppl.pipeline.stage1_cache import cached_stage1, stage1_key, store_stage1
from vmoer_ppl.pipeline.validate import validate_config
from vmoer_ppl.safe_files import run_lock, write_text
from vmoer_ppl.scoring.letter import letter_token_ids

log = logging.getLogger(__name__)

RUN_FILE, FIT_FILE = "run.json", "fit.json"
OUTPUTS = ("fit.json", "metrics.json", "report.md", "plots", "adapters", "checkpoints", "stage1")


def scorer_kwargs(cfg: FitConfig, tokenizer, data: dict) -> dict:
    """``bayesianize`` arguments of the run's scorer (letter: the option-letter token ids)."""
    if cfg.scorer == "cloze":
        return {"scorer": "cloze"}
    num_options = int(data["train"]["num_options"][0])
    return {"scorer": "next-token", "option_token_ids": letter_token_ids(tokenizer, num_options)}


def prepare_run_dir(cfg: FitConfig) -> Path:
    """Create or reuse the run directory: same settings resume; other settings need --overwrite."""
    out = Path(cfg.out)  # run_lock has refused links in it
    if (out / CONFIG_FILE).exists() and not cfg.overwrite:
        saved = FitConfig.load(out)
        mine = {**asdict(cfg), "overwrite": False}
        if {**asdict(saved), "overwrite": False} != mine:
            raise FileExistsError(
                f"{out} holds a run with other settings; pass --overwrite to replace it or "
                "choose another --out"
            )
        if (out / FIT_FILE).exists():
            raise FileExistsError(
                f"{out} holds a finished run; evaluate it with `vmoer evaluate {out}`, or pass "
                "--overwrite to fit again"
            )
        log.info("resuming the unfinished run in %s", out)
    elif cfg.overwrite:
        for name in OUTPUTS + (CONFIG_FILE, RUN_FILE):
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    cfg.save(out)
    return out


def adapted(cfg: FitConfig, out: Path, model, tok, enc: dict | None = None):
    """The model after stage 1: trained now (given ``enc``) or re-applied from ``out/stage1``.

    A stage 1 trained before on the same backbone, splits and settings is taken from the
    stage-1 cache (:mod:`vmoer_ppl.pipeline.stage1_cache`) instead of trained again.

    With ``cfg.lora_scope == "suffix"``, LoRA adapts only the decoder layers from the first
    Bayesian router on and trains on the frozen-prefix states entering that layer (cached), so
    each step pays for the suffix alone; the layers below, and so the cache, stay exact. The
    deterministic model's confidence regime on the validation split is measured before and after
    (``out/stage1/regime.json``).
    """
    if not cfg.lora_steps:
        return model
    if (out / "stage1" / "adapter_config.json").exists():
        return apply_saved_lora(model, out / "stage1")
    if enc is None:
        raise FileNotFoundError(f"{out / 'stage1'}: the run's stage-1 adapter is missing")
    kwargs = scorer_kwargs(cfg, tok, enc)
    data = {"train": stage_rows(cfg, enc["train"], stage=1), "val": enc["val"]}
    key = stage1_key(model, cfg, data)
    if (hit := cached_stage1(key)) is not None:  # the same stage 1 was trained before
        log.info("stage 1: reusing the cached adapter %s", hit)
        shutil.copytree(hit, out / "stage1", dirs_exist_ok=True)
        return apply_saved_lora(model, out / "stage1")
    first = stage1_first_layer(cfg, model, kwargs)
    head = stage1_head(model, kwargs, first)
    if first:
        data = suffix_data(head, data, model)
    before = measure_regime(head, data["val"], desc="regime before stage 1")
    settings = LoRASettings(steps=cfg.lora_steps, rank=cfg.lora_rank, lr=cfg.lora_lr, seed=cfg.seed)
    model, losses = adapt_backbone(
        model,
        lambda m: stage1_head(m, kwargs, first),
        strip(data["train"]),
        settings,
        out / "stage1",
        first_layer=first,
    )
    after = measure_regime(stage1_head(model, kwargs, first), data["val"], desc="regime after")
    report = {"first_layer": first, "losses": losses, "val_before": before, "val_after": after}
    write_text(out / "stage1" / "regime.json", json.dumps(report, indent=2))
    log.info("stage 1: validation regime %s -> %s", before, after)
    store_stage1(key, out / "stage1")
    return model


def stage_rows(cfg: FitConfig, train: dict, stage: int) -> dict:
    """The train rows stage ``stage`` (1: LoRA, 2: SVI) fits under ``cfg.stage_split``.

    ``"shared"`` (the paper): both stages fit the whole train split. ``"disjoint"``: stage 1 the
    first half, SVI the second, so the routers' posterior is fitted on questions the adapted
    backbone has not memorised. Without stage 1 SVI always gets the whole split.
    """
    if cfg.stage_split == "shared" or not cfg.lora_steps:
        return train
    if cfg.stage_split != "disjoint":
        raise ValueError(f"stage_split={cfg.stage_split!r}: use 'shared' or 'disjoint'")
    n = len(train["labels"])
    if n < 2:
        raise ValueError("stage_split='disjoint' needs at least 2 train questions; raise --n-train")
    half = n // 2
    return subset(train, range(half) if stage == 1 else range(half, n))


def stage1_first_layer(cfg: FitConfig, model, kwargs: dict) -> int:
    """First decoder layer stage 1 adapts: 0 (all), or the first Bayesian router's layer."""
    if cfg.lora_scope == "all":
        return 0
    if cfg.lora_scope != "suffix":
        raise ValueError(f"lora_scope={cfg.lora_scope!r}: use 'all' or 'suffix'")
    if model.config.model_type not in SUFFIX_SAFE:
        return 0  # no frozen-prefix cache for this family: LoRA runs the whole model
    from vmoer_ppl.bayesianize import _network, decoder_layer_index
    from vmoer_ppl.sites import select_layers

    _, routers = _network(model, kwargs.get("option_token_ids"), kwargs["scorer"])
    return decoder_layer_index(select_layers(routers, cfg.layers)[0].name)


def stage1_head(model, kwargs: dict, first: int):
    """The deterministic answer head over ``model`` (or its peft wrapper), suffix from ``first``."""
    from vmoer_ppl.bayesianize import _network

    head = _network(model, kwargs.get("option_token_ids"), kwargs["scorer"])[0]
    if hasattr(head, "first_layer"):
        head.first_layer = first
    return head


def strip(data: dict) -> dict:
    """The network's inputs and labels (drops bookkeeping tensors such as ``num_options``)."""
    return {k: v for k, v in data.items() if k != "num_options"}


def suffix_data(head, enc: dict, model) -> dict:
    """Attach frozen-prefix states when the scorer and architecture allow it, else ``enc``.

    The cache is keyed by the weights below the first suffix layer only
    (``model_fingerprint(model, below=first)``), so a model whose suffix changed (stage 1 on the
    suffix) reuses the states, and fit, evaluate and inspect share them.
    """
    first = getattr(head, "first_layer", None)
    if first is None or model.config.model_type not in SUFFIX_SAFE:
        return enc
    fingerprint = model_fingerprint(model, below=first)
    root = cache_root() / "prefix"
    return {k: cached_prefix_states(head, v, first, fingerprint, root) for k, v in enc.items()}


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
    if size > 1 and cfg.lora_steps:
        raise ValueError("stage 1 (LoRA) runs in one process; run it first, then SVI distributed")
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
    run["data_hashes"] = hashes
    ids = {"model": fp, "data": f"{hashes['train']}:{hashes['val']}"}  # checked on resume
    if rank == 0:
        write_text(out / RUN_FILE, json.dumps(run, indent=2))
    families = {}
    data = None
    build = {
        "layers": cfg.layers,
        "beta": cfg.beta,
        "num_data": len(stage_rows(cfg, enc["train"], stage=2)["labels"]),
        "trunk_dim": cfg.trunk_dim,
        **kwargs,
    }
    for family in cfg.families:
        t = time.perf_counter()
        if data is None:
            bm, _ = bayesianize(model, family=family, **build)
            data = {k: strip(v) for k, v in suffix_data(bm.net, enc, model).items()}
            data["train"] = stage_rows(cfg, data["train"], stage=2)
            timings["frozen_prefix_s"] = time.perf_counter() - t
            t = time.perf_counter()
        shards = size * -(-cfg.shards // size)  # a multiple of the process count
        families[family] = fit_family(
            cfg, family, model, data, build, out, shards=shards, is_main=rank == 0, identity=ids
        )
        if rank == 0:
            plot_fit_diagnostics(families[family], family, out / "plots" / f"fit_{family}.png")
        timings[f"fit_{family}_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    result = {"run": run, "families": families, "timings": timings}
    if rank == 0:
        write_text(out / FIT_FILE, json.dumps(result, indent=2))
    barrier()
    return result
