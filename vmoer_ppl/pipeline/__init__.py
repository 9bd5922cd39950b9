"""The main job: run settings, data roles, fitting, evaluation and run directories."""

from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.demo import EMBEDDED_ID_SET, demo_config, run_demo
from vmoer_ppl.pipeline.fit import run_fit
from vmoer_ppl.pipeline.run_eval import evaluate_run
from vmoer_ppl.pipeline.sets import ID_CANDIDATES, OOD_FOR, SetSpec, id_splits, ood_records

__all__ = [
    "EMBEDDED_ID_SET",
    "ID_CANDIDATES",
    "OOD_FOR",
    "FitConfig",
    "SetSpec",
    "demo_config",
    "evaluate_run",
    "id_splits",
    "ood_records",
    "run_demo",
    "run_fit",
]
