"""Which train rows each stage fits: shared (the paper) or disjoint halves."""

import pytest
import torch

from vmoer_ppl.pipeline.backbone import stage_rows
from vmoer_ppl.pipeline.config import FitConfig


def _train(n=7):
    return {"input_ids": torch.arange(n * 2).reshape(n, 2), "labels": torch.arange(n)}


def test_shared_gives_both_stages_the_whole_split():
    cfg = FitConfig().replace(lora_steps=3)
    for stage in (1, 2):
        assert stage_rows(cfg, _train(), stage)["labels"].tolist() == list(range(7))


def test_disjoint_halves_cover_the_split_once():
    cfg = FitConfig().replace(lora_steps=3, stage_split="disjoint")
    one, two = (stage_rows(cfg, _train(), s)["labels"].tolist() for s in (1, 2))
    assert one == [0, 1, 2] and two == [3, 4, 5, 6]
    assert stage_rows(cfg, _train(), 2)["input_ids"].tolist() == [
        [6, 7],
        [8, 9],
        [10, 11],
        [12, 13],
    ]


def test_without_stage_1_svi_gets_everything_and_bad_values_are_named():
    assert len(stage_rows(FitConfig().replace(stage_split="disjoint"), _train(), 2)["labels"]) == 7
    with pytest.raises(ValueError, match="'shared' or 'disjoint'"):
        stage_rows(FitConfig().replace(lora_steps=1, stage_split="halves"), _train(), 2)
    with pytest.raises(ValueError, match="--n-train"):
        stage_rows(FitConfig().replace(lora_steps=1, stage_split="disjoint"), _train(1), 2)
