"""The backbone a run fits against, and the inputs its Bayesian suffix reads.

Stage 1 (LoRA) trained, taken from the stage-1 cache or re-applied from the run directory; the
frozen-prefix states entering the first Bayesian layer.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from vmoer_ppl.bayesianize import decoder_layer_index, network_of
from vmoer_ppl.data.tensors import subset
from vmoer_ppl.embedded.build import cache_root
from vmoer_ppl.embedded.prefix_cache import SUFFIX_SAFE, cached_prefix_states
from vmoer_ppl.infer.sharding import barrier, everywhere, world
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import model_fingerprint
from vmoer_ppl.pipeline.regime import measure_regime
from vmoer_ppl.pipeline.run_dir import scorer_kwargs, strip
from vmoer_ppl.pipeline.stage1 import LoRASettings, adapt_backbone, apply_saved_lora
from vmoer_ppl.pipeline.stage1_cache import cached_stage1, stage1_key, store_stage1
from vmoer_ppl.safe_files import write_text
from vmoer_ppl.sites import select_layers

log = logging.getLogger(__name__)


def adapted(cfg: FitConfig, out: Path, model, tok, enc: dict | None = None):
    """The model after stage 1: trained now (given ``enc``) or re-applied from ``out/stage1``.

    A stage 1 trained before on the same backbone, splits and settings is taken from the
    stage-1 cache (:mod:`vmoer_ppl.pipeline.stage1_cache`) instead of trained again.

    With ``cfg.stage1.scope == "suffix"``, LoRA adapts only the decoder layers from the first
    Bayesian router on and trains on the frozen-prefix states entering that layer (cached), so
    each step pays for the suffix alone; the layers below, and so the cache, stay exact. The
    deterministic model's confidence regime on the validation split is measured before and after
    (``out/stage1/regime.json``).

    Under ``torch.distributed`` (``torchrun``) every process calls this: stage 1 trains data
    parallel (:func:`~vmoer_ppl.pipeline.stage1.adapt_backbone`), the prefix states are computed
    in per-process shards, and only rank 0 writes files; the processes agree before reading them.
    """
    if not cfg.stage1.steps:
        return model
    if everywhere((out / "stage1" / "adapter_config.json").exists()):
        return apply_saved_lora(model, out / "stage1")
    if enc is None:
        raise FileNotFoundError(f"{out / 'stage1'}: the run's stage-1 adapter is missing")
    kwargs = scorer_kwargs(cfg, tok, enc)
    data = stage1_rows(cfg, enc)
    key = stage1_key(model, cfg, data)
    hit = cached_stage1(key)
    if everywhere(hit is not None):  # the same stage 1 was trained before
        log.info("stage 1: reusing the cached adapter %s", hit)
        if world()[0] == 0:
            shutil.copytree(hit, out / "stage1", dirs_exist_ok=True)
        barrier()
        return apply_saved_lora(model, out / "stage1")
    first, data = stage1_inputs(cfg, model, kwargs, data)
    head = stage1_head(model, kwargs, first)
    before = measure_regime(head, data["val"], desc="regime before stage 1")
    model, losses = adapt_backbone(
        model,
        lambda m: stage1_head(m, kwargs, first),
        strip(data["train"]),
        stage1_settings(cfg),
        out / "stage1",
        first_layer=first,
    )
    after = measure_regime(stage1_head(model, kwargs, first), data["val"], desc="regime after")
    report = {"first_layer": first, "losses": losses, "val_before": before, "val_after": after}
    if world()[0] == 0:
        write_text(out / "stage1" / "regime.json", json.dumps(report, indent=2))
        store_stage1(key, out / "stage1")
    log.info("stage 1: validation regime %s -> %s", before, after)
    barrier()
    return model


def stage_rows(cfg: FitConfig, train: dict, stage: int) -> dict:
    """The train rows stage ``stage`` (1: LoRA, 2: SVI) fits under ``cfg.stage1.split``.

    ``"shared"`` (the paper): both stages fit the whole train split. ``"disjoint"``: stage 1 the
    first half, SVI the second, so the routers' posterior is fitted on questions the adapted
    backbone has not memorised. Without stage 1 SVI always gets the whole split.
    """
    if cfg.stage1.split == "shared" or not cfg.stage1.steps:
        return train
    if cfg.stage1.split != "disjoint":
        raise ValueError(f"stage_split={cfg.stage1.split!r}: use 'shared' or 'disjoint'")
    n = len(train["labels"])
    if n < 2:
        raise ValueError("stage_split='disjoint' needs at least 2 train questions; raise --n-train")
    half = n // 2
    return subset(train, range(half) if stage == 1 else range(half, n))


def stage1_rows(cfg: FitConfig, enc: dict) -> dict:
    """Stage 1's splits: its train rows (:func:`stage_rows`, stage 1) and the validation split."""
    return {"train": stage_rows(cfg, enc["train"], stage=1), "val": enc["val"]}


def stage1_inputs(cfg: FitConfig, model, kwargs: dict, rows: dict) -> tuple[int, dict]:
    """The first decoder layer stage 1 adapts, and ``rows`` as its steps read them.

    Parameters
    ----------
    cfg : FitConfig
        The run's settings (``lora_scope``, ``layers``).
    model : nn.Module
        The backbone before stage 1.
    kwargs : dict
        The scorer's :func:`bayesianize` arguments.
    rows : dict
        Stage 1's splits (:func:`stage1_rows`).

    Returns
    -------
    tuple
        ``(first, rows)``: ``rows`` with the frozen-prefix states entering layer ``first``
        attached when ``first > 0`` (unchanged when stage 1 adapts every layer).
    """
    first = stage1_first_layer(cfg, model, kwargs)
    if first:
        rows = suffix_data(stage1_head(model, kwargs, first), rows, model)
    return first, rows


def stage1_settings(cfg: FitConfig) -> LoRASettings:
    """The :class:`LoRASettings` stage 1 trains with: the run's, with its seed and batching."""
    return replace(cfg.stage1, seed=cfg.seed, group_by_length=cfg.svi.group_by_length)


def svi_sets(cfg: FitConfig, enc: dict) -> dict:
    """``enc`` with its train split cut to SVI's rows (:func:`stage_rows`, stage 2).

    Fit and evaluate both compute frozen-prefix states from this, so the train states the fit
    cached are the ones evaluate finds (the cache key names the rows and their batching).
    """
    return {**enc, "train": stage_rows(cfg, enc["train"], stage=2)}


def check_layers(cfg: FitConfig, model, kwargs: dict) -> None:
    """Refuse ``--layers`` that the model's routers do not have, before stage 1 or any fit.

    Raises
    ------
    ValueError
        Naming the flag and the number of routers (``last:9`` of 3 routers, index 5).
    """
    _, routers = network_of(model, kwargs.get("option_token_ids"), kwargs["scorer"])
    try:
        select_layers(routers, cfg.layers)
    except ValueError as err:
        raise ValueError(f"--layers: {err}") from None


def stage1_first_layer(cfg: FitConfig, model, kwargs: dict) -> int:
    """First decoder layer stage 1 adapts: 0 (all), or the first Bayesian router's layer."""
    if cfg.stage1.scope == "all":
        return 0
    if cfg.stage1.scope != "suffix":
        raise ValueError(f"lora_scope={cfg.stage1.scope!r}: use 'all' or 'suffix'")
    if model.config.model_type not in SUFFIX_SAFE:
        return 0  # no frozen-prefix cache for this family: LoRA runs the whole model
    _, routers = network_of(model, kwargs.get("option_token_ids"), kwargs["scorer"])
    return decoder_layer_index(select_layers(routers, cfg.layers)[0].name)


def stage1_head(model, kwargs: dict, first: int):
    """The deterministic answer head over ``model`` (or its peft wrapper), suffix from ``first``."""
    head = network_of(model, kwargs.get("option_token_ids"), kwargs["scorer"])[0]
    if hasattr(head, "first_layer"):
        head.first_layer = first
    return head


def suffix_data(head, enc: dict, model) -> dict:
    """Attach frozen-prefix states when the scorer and architecture allow it, else ``enc``.

    Nothing is attached when the first Bayesian layer is layer 0 (``--layers all``): there is no
    frozen prefix, and routing stability then adds its embedding noise to the token inputs.

    The cache is keyed by the weights below the first suffix layer only
    (``model_fingerprint(model, below=first)``), so a model whose suffix changed (stage 1 on the
    suffix) reuses the states, and fit, evaluate and inspect share them.
    """
    first = getattr(head, "first_layer", None)
    if not first or model.config.model_type not in SUFFIX_SAFE:
        return enc  # no scorer's layer index, or routers from layer 0: no frozen prefix to skip
    fingerprint = model_fingerprint(model, below=first)
    root = cache_root() / "prefix"
    return {k: cached_prefix_states(head, v, first, fingerprint, root) for k, v in enc.items()}
