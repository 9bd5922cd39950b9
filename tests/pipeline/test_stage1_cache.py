"""The stage-1 cache key: every LoRA setting that changes the adapter, nothing that does not."""

import torch
from torch import nn

from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.stage1_cache import ONCE_FIXED, stage1_key


def _key(**settings):
    torch.manual_seed(0)
    model = nn.Linear(4, 3, dtype=torch.float32)
    data = {split: {"input_ids": torch.arange(6).reshape(2, 3)} for split in ("train", "val")}
    return stage1_key(model, FitConfig().replace(lora_steps=5, **settings), data)


def test_the_key_follows_the_lora_settings_and_ignores_where_the_run_is_written():
    base = _key()
    assert _key(out="elsewhere", overwrite=True, n_test=3) == base
    for name, value in [
        ("lora_rank", 4),
        ("lora_lr", 1e-3),
        ("lora_scope", "suffix"),
        ("lora_alpha", 32),
        ("lora_dropout", 0.1),
        ("lora_batch_size", 4),
        ("seed", 1),
        ("group_by_length", "off"),  # passes of other lengths: other rounding, another adapter
    ]:
        assert _key(**{name: value}) != base, name


def test_settings_that_became_flags_keep_the_keys_written_before():
    lora = FitConfig().stage1
    assert {k: getattr(lora, k) for k in ONCE_FIXED} == ONCE_FIXED  # defaults: not in the key
