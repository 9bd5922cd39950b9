"""Every MoE model type of the installed transformers: supported with parity, or refused by class.

The list comes from transformers' own registry (:func:`moe_model_types`), not from this file:
when transformers adds a model type, :func:`test_every_moe_model_type_is_classified` fails
until the type is classified below (run ``python benchmarks/hf_coverage.py <type>``).
"supported": bayesianize + mean-mode parity (float32 ≤ 1e-5; bfloat16 within twice upstream's
own bf16 rounding) + one SVI step + MC prediction. A refusal must be a ValueError naming its
class; "untestable": transformers itself cannot build or run the generically shrunk tiny model.
"""

import pytest
import torch

from vmoer_ppl.integrations.hf.coverage import check, moe_model_types

#: Words each refusal class's message must contain.
REFUSALS = {
    "no-router": "no MoE router found",
    "not-hidden-state": "besides the hidden states",
    "output-contract": "does not return (logits, weights, experts)",
    "unknown-rule": "no known gate rule reproduces",
    "no-lm-head": "no language-model head",
    "encoder-decoder": "encoder-decoder MoE",
    "nested-linear": "a Linear nested inside the router module",
    "router-shape": "routed with the others",
    "not-linear": "not one linear map of the hidden state",
}
#: model type -> (float32 outcome, bfloat16 outcome), transformers 5.24 (the lock).
EXPECTED = {
    "afmoe": ("supported", "supported"),
    "aria": ("supported", "supported"),
    "aria_text": ("supported", "supported"),
    "axk1": ("supported", "supported"),
    "axk2": ("supported", "supported"),
    "bailing_hybrid": ("supported", "supported"),
    "beam": ("supported", "supported"),
    "cohere2_moe": ("supported", "supported"),
    "dbrx": ("supported", "supported"),
    "deepseek_ocr2": ("supported", "supported"),
    "deepseek_v2": ("supported", "supported"),
    "deepseek_v3": ("supported", "supported"),
    "deepseek_v32": ("supported", "supported"),
    "deepseek_v4": ("supported", "supported"),
    "diffusion_gemma": ("no-router", "no-router"),
    "doge": ("no-router", "no-router"),
    "dots1": ("supported", "supported"),
    "dots3_note": ("supported", "supported"),
    "dots3_note_text": ("supported", "supported"),
    "ernie4_5_moe": ("supported", "supported"),
    "ernie4_5_vl_moe": ("supported", "supported"),
    "exaone_moe": ("supported", "supported"),
    "flex_olmo": ("supported", "supported"),
    "flint": ("supported", "supported"),
    "gemma4": ("supported", "supported"),
    "gemma4_text": ("supported", "supported"),
    "glm4_moe": ("supported", "supported"),
    "glm4_moe_lite": ("supported", "supported"),
    "glm4v_moe": ("supported", "supported"),
    "glm4v_moe_text": ("no-lm-head", "no-lm-head"),
    "glm5_next": ("supported", "supported"),
    "glm5_next_text": ("no-lm-head", "no-lm-head"),
    "glm_moe_dsa": ("supported", "supported"),
    "gpt_oss": ("supported", "supported"),
    "granitemoe": ("supported", "supported"),
    "granitemoe_swa": ("supported", "supported"),
    "granitemoehybrid": ("supported", "supported"),
    "granitemoeshared": ("supported", "supported"),
    "hunyuan_v1_moe": ("supported", "supported"),
    "hy_v3": ("supported", "supported"),
    "hy_v4": ("supported", "supported"),
    "hy_v4_vl": ("supported", "supported"),
    "hy_v4_vl_text": ("no-lm-head", "no-lm-head"),
    "inkling2": ("supported", "supported"),
    "inkling2_loop": ("supported", "supported"),
    "inkling2_loop_text": ("supported", "supported"),
    "inkling2_text": ("supported", "supported"),
    "inkling_mm_model": ("supported", "supported"),
    "inkling_text": ("supported", "supported"),
    "jamba": ("supported", "supported"),
    "jetmoe": ("supported", "supported"),
    "kimi_k25": ("supported", "supported"),
    "kimi_linear": ("supported", "supported"),
    "kolibri1": ("supported", "supported"),
    "laguna": ("supported", "supported"),
    "lara_mini": ("supported", "supported"),
    "lfm2_moe": ("supported", "supported"),
    "llama4": ("supported", "supported"),
    "llama4_text": ("supported", "supported"),
    "longcat_flash": ("supported", "supported"),
    "mellum": ("supported", "supported"),
    "mimo_v2_flash": ("supported", "supported"),
    "minimax": ("supported", "supported"),
    "minimax_m2": ("supported", "supported"),
    "minimax_m3_vl": ("supported", "supported"),
    "minimax_m3_vl_text": ("supported", "supported"),
    "mistral4": ("supported", "supported"),
    "mistral_large4": ("supported", "supported"),
    "mistral_large4_text": ("no-lm-head", "no-lm-head"),
    "mixtral": ("supported", "supported"),
    "muse_spark": ("supported", "supported"),
    "muse_spark_text": ("no-lm-head", "no-lm-head"),
    "nemo_speechlm": ("no-lm-head", "no-lm-head"),
    "nemotron_h": ("supported", "supported"),
    "nllb-moe": ("encoder-decoder", "encoder-decoder"),
    "olmoe": ("supported", "supported"),
    "openai_privacy_filter": ("no-lm-head", "no-lm-head"),
    "phimoe": ("supported", "supported"),
    "qwen2_moe": ("supported", "supported"),
    "qwen3_5_moe": ("supported", "supported"),
    "qwen3_5_moe_text": ("supported", "supported"),
    "qwen3_moe": ("supported", "supported"),
    "qwen3_next": ("supported", "supported"),
    "qwen3_omni_moe_thinker": ("supported", "supported"),
    "qwen3_vl_moe": ("supported", "supported"),
    "qwen3_vl_moe_text": ("no-lm-head", "no-lm-head"),
    "qwen4_exp": ("supported", "supported"),
    "qwen4_exp_text": ("supported", "supported"),
    "sarvam_mla": ("supported", "supported"),
    "sarvam_moe": ("supported", "supported"),
    "solar_open": ("supported", "supported"),
    "step3p7": ("supported", "supported"),
    "switch_transformers": ("encoder-decoder", "encoder-decoder"),
    "unlimited_ocr": ("supported", "supported"),
    "zaya": ("not-linear", "not-linear"),
}
DTYPES = {"float32": (0, torch.float32), "bfloat16": (1, torch.bfloat16)}


def test_every_moe_model_type_is_classified():
    found = set(moe_model_types())
    assert found - set(EXPECTED) == set(), "new MoE model types: classify them in EXPECTED"
    assert set(EXPECTED) - found == set(), "model types gone from transformers: drop them"


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_model_type_is_supported_or_refused_by_class_never_crashes(model_type, dtype):
    index, torch_dtype = DTYPES[dtype]
    want = EXPECTED[model_type][index]
    row = check(model_type, torch_dtype)
    assert row.status != "crash", row.detail
    if want in REFUSALS:
        assert row.status == "refused", row.detail
        assert REFUSALS[want] in row.detail
    else:
        assert row.status == want, row.detail
        if want == "supported":
            assert row.routers >= 1 and row.rule


def test_bfloat16_models_are_loaded_as_from_pretrained_gives_them():
    # Inkling-2 keeps its router in float32 under bf16 (_keep_in_fp32_modules_strict); a plain
    # .to(bfloat16) would not, and upstream's own forward then fails
    from vmoer_ppl.integrations.hf.coverage import as_loaded
    from vmoer_ppl.integrations.hf.tiny import tiny_model

    hf = as_loaded(tiny_model("inkling2_text"), torch.bfloat16)
    gates = [m for n, m in hf.named_modules() if n.endswith("mlp.gate")]
    assert gates and all(g.weight.dtype == torch.float32 for g in gates)
    assert hf.get_input_embeddings().weight.dtype == torch.bfloat16
