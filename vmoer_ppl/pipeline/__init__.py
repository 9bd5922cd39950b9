"""The main job: data roles, the embedded demo, evaluation and run directories."""

from vmoer_ppl.pipeline.demo import EMBEDDED_ID_SET, DemoConfig, run_demo
from vmoer_ppl.pipeline.sets import ID_CANDIDATES, OOD_FOR, SetSpec, id_splits, ood_records

__all__ = [
    "EMBEDDED_ID_SET",
    "ID_CANDIDATES",
    "OOD_FOR",
    "DemoConfig",
    "SetSpec",
    "id_splits",
    "ood_records",
    "run_demo",
]
