"""The run directory: its file names, creating or resuming one, and reading a finished one.

``vmoer fit`` writes it; ``evaluate``, ``inspect`` and ``compare`` read it. Nothing in it is
executed: settings are JSON, weights safetensors (:mod:`vmoer_ppl.safe_files` keeps every path
inside the directory).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from vmoer_ppl.pipeline.config import CONFIG_FILE, FitConfig
from vmoer_ppl.pipeline.paths import absolute_paths
from vmoer_ppl.scoring.letter import letter_token_ids
from vmoer_ppl.scoring.names import ScorerKind, parse_scorer
from vmoer_ppl.settings import to_dict

log = logging.getLogger(__name__)

RUN_FILE, FIT_FILE = "run.json", "fit.json"
OUTPUTS = ("fit.json", "metrics.json", "report.md", "plots", "adapters", "checkpoints", "stage1")


def scorer_kwargs(cfg: FitConfig, tokenizer, data: dict) -> dict:
    """``bayesianize`` arguments of the run's scorer (letter: the option-letter token ids)."""
    kwargs: dict = {"scorer": cfg.dataset.scorer}
    if parse_scorer(cfg.dataset.scorer)[0] is ScorerKind.LETTER:
        num_options = int(data["train"]["num_options"][0])
        kwargs["option_token_ids"] = letter_token_ids(tokenizer, num_options)
    return kwargs


def prepare_run_dir(cfg: FitConfig) -> Path:
    """Create or reuse the run directory: same settings resume; other settings need --overwrite.

    A directory holding only the settings of a fit refused before any output (a bad data file,
    say) takes the new settings: nothing of it is lost.
    """
    out = Path(cfg.out)  # run_lock has refused links in it
    settled = (out / CONFIG_FILE).exists() and not cfg.overwrite
    if settled and not any((out / name).exists() for name in (*OUTPUTS, RUN_FILE)):
        log.info("%s: replacing the settings of a fit that stopped before any output", out)
    elif settled:
        saved = absolute_paths(FitConfig.load(out))  # a run saved before paths were absolute
        mine = {**to_dict(cfg), "overwrite": False}
        if {**to_dict(saved), "overwrite": False} != mine:
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


def strip(data: dict) -> dict:
    """The network's inputs and labels (drops bookkeeping tensors such as ``num_options``)."""
    return {k: v for k, v in data.items() if k != "num_options"}


def read_finished(out: Path) -> dict:
    """The run's ``run.json``, after checking the fit finished (``fit.json`` exists)."""
    FitConfig.load(out)  # a clear error when this is not a run directory
    if not (out / FIT_FILE).exists():
        raise FileNotFoundError(
            f"{out}: the fit did not finish (no {FIT_FILE}); run the same `vmoer fit` command "
            "again to resume it"
        )
    return json.loads((out / RUN_FILE).read_text())
