"""Data: the synthetic toy task (MCQA loaders come with the pipeline)."""

from vmoer_ppl.data.synthetic import make_counting_task

__all__ = ["make_counting_task"]
