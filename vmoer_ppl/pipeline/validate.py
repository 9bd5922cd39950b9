"""Every setting of a run checked before any work starts, each error naming the flag to change.

Without this, ``--batch-size 0`` or ``--shards 100`` surface as a ``ZeroDivisionError`` minutes
later, ``--lr inf`` as a tensor dump at the first step, ``--num-samples 0`` only at evaluation,
after the whole fit, and ``--svi-steps -1`` is silently a fit of nothing.
"""

from __future__ import annotations

import math

from vmoer_ppl.baselines import BASELINES
from vmoer_ppl.families import as_family
from vmoer_ppl.infer.micro_batches import GROUPING
from vmoer_ppl.infer.score_function import ESTIMATORS
from vmoer_ppl.nn.link import LINKS
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.placement import parse_device_map, resolve_device, resolve_dtype
from vmoer_ppl.pipeline.scaled_rows import TEMPERATURE_SCALED
from vmoer_ppl.pipeline.tracking import check_trackers
from vmoer_ppl.priors.relative import parse_prior_scale
from vmoer_ppl.scoring.names import SCORER_NAMES
from vmoer_ppl.settings import flat_values
from vmoer_ppl.sites import parse_layers

#: The evaluation row that routes each fitted VMoER family at its posterior mean (no sampling).
POSTERIOR_MEAN = "posterior-mean"

#: Integer settings and their smallest allowed value (``None`` allowed where the default is).
MIN_INT = {
    "n_train": 2,
    "n_val": 1,
    "n_test": 1,
    "n_ood": 1,
    "max_prompt_tokens": 1,
    "svi_steps": 1,
    "batch_size": 1,
    "shards": 1,
    "eval_every": 0,
    "patience": 1,
    "lora_steps": 0,
    "lora_rank": 1,
    "lora_alpha": 1,
    "lora_batch_size": 1,
    "checkpoint_every": 1,
    "baseline_steps": 0,
    "num_samples": 1,
    "val_samples": 1,
    "trunk_dim": 1,
    "workers": 1,
}
#: Float settings: (smallest, whether the smallest itself is allowed).
MIN_FLOAT = {
    "lr": (0.0, False),
    "lora_lr": (0.0, False),
    "beta": (0.0, True),
    "weight_decay": (0.0, True),
    "svi_epochs": (0.0, False),
    "clip_norm": (0.0, False),
    "warmup_ratio": (0.0, True),
    "lora_dropout": (0.0, True),
    "min_init_overlap": (0.0, True),
}
#: Settings that are fractions: at most 1.
AT_MOST_ONE = ("warmup_ratio", "lora_dropout", "min_init_overlap")
#: Settings whose None means something (their help says what).
NONE_OK = frozenset({"patience", "val_samples", "trunk_dim", "svi_epochs", "clip_norm"})
CHOICES = {
    "scorer": SCORER_NAMES,
    "estimator": ESTIMATORS,
    "lora_scope": ("all", "suffix"),
    "stage_split": ("shared", "disjoint"),
    "predict_mode": ("mc", "analytic"),
    "link": LINKS,
    "group_by_length": GROUPING,
    "optimizer": ("adamw", "adam"),
    "schedule": ("cosine", "constant"),
}


def flag(name: str) -> str:
    """The command-line flag of a setting."""
    return "--" + name.replace("_", "-")


def check_int(name: str, value, least: int) -> None:
    """Refuse a value that is not an integer >= ``least``, naming the flag (None where allowed)."""
    if value is None and name in NONE_OK:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{flag(name)} {value!r}: must be an integer >= {least}")


def _check_float(name: str, value, least: float, inclusive: bool) -> None:
    if value is None and name in NONE_OK:
        return
    bad = not isinstance(value, (int, float)) or isinstance(value, bool)
    if bad or not math.isfinite(value) or value < least or (value == least and not inclusive):
        rel = ">=" if inclusive else ">"
        raise ValueError(f"{flag(name)} {value!r}: must be a finite number {rel} {least:g}")


def check_prediction(mode: str, link: str) -> None:
    """Refuse an unknown prediction mode or link, naming the choices (the same as a fit's)."""
    for name, value in (("predict_mode", mode), ("link", link)):
        if value not in CHOICES[name]:
            raise ValueError(f"{flag(name)} {value!r}: use one of {list(CHOICES[name])}")


def validate_config(cfg: FitConfig) -> FitConfig:
    """Check every setting of ``cfg``; return it unchanged.

    Raises
    ------
    ValueError
        For the first bad setting, naming its flag, the value and what is allowed.
    """
    value = flat_values(cfg)
    for name, least in MIN_INT.items():
        check_int(name, value[name], least)
    for name, (least, inclusive) in MIN_FLOAT.items():
        _check_float(name, value[name], least, inclusive)
    for name in AT_MOST_ONE:
        if value[name] > 1:
            raise ValueError(f"{flag(name)} {value[name]!r}: a fraction, at most 1")
    for lr in cfg.lr_grid:
        _check_float("lr_grid", lr, 0.0, False)
    for name, allowed in CHOICES.items():
        if value[name] not in allowed:
            raise ValueError(f"{flag(name)} {value[name]!r}: use one of {list(allowed)}")
    try:
        parse_layers(cfg.layers)
    except ValueError as err:
        raise ValueError(f"--layers: {err}") from None
    if not cfg.families:
        raise ValueError("no router family to fit; pass e.g. --families logit-mf logit-fc")
    for family in cfg.families:
        as_family(family)
    for name in cfg.evaluation.baselines:
        if name not in BASELINES and name not in (POSTERIOR_MEAN, TEMPERATURE_SCALED):
            known = sorted([*BASELINES, POSTERIOR_MEAN, TEMPERATURE_SCALED])
            raise ValueError(f"--baselines {name!r}: use any of {known}")
    if cfg.svi.shards > cfg.svi.batch_size:
        raise ValueError(
            f"--shards {cfg.svi.shards} exceeds --batch-size {cfg.svi.batch_size}: a shard "
            "needs at least one question"
        )
    if str(cfg.prior_scale).startswith("auto"):
        for c in (
            str(cfg.prior_scale).partition(":")[2].split(",") if ":" in str(cfg.prior_scale) else []
        ):
            parse_prior_scale(f"relative:{c}")
    else:
        parse_prior_scale(cfg.prior_scale)
    check_trackers(cfg.log_with)
    resolve_device(cfg.placement.device)
    resolve_dtype(cfg.placement.dtype)
    parse_device_map(cfg.placement.device_map)
    if cfg.placement.workers > 1 and cfg.placement.device_map:
        raise ValueError(
            f"--workers {cfg.placement.workers} with --device-map: each worker would place its "
            "own copy of the model over the devices; pass --workers 1"
        )
    return cfg
