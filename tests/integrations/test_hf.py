"""transformers MoE models: exact parity, frozen-ness, router logits/aux loss, save and load."""

import copy
import hashlib

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM
from vmoer_ppl.guides.base import GuideRouting

from tests.integrations.tiny_hf import COMMON, CONFIGS, ROUTERS_PER_MODEL, tiny_model
from vmoer_ppl import SVIConfig, bayesianize, fit_svi, from_pretrained, predict
from vmoer_ppl.integrations.hf import last_token_index
from vmoer_ppl.routing import run_routed

ARCHS = list(CONFIGS)


def _batch(B=2, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 64, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, T - 2 :] = 0
    return ids, mask


def _digest(module):
    return {
        k: hashlib.sha256(v.detach().float().numpy().tobytes()).hexdigest()
        for k, v in module.state_dict().items()
    }


@pytest.mark.parametrize("arch", ARCHS)
def test_mean_mode_at_init_and_untouched_forward_match_the_original_model(arch):
    hf = tiny_model(arch, dtype=torch.float32)
    ids, mask = _batch()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
    model, guide = bayesianize(hf, family="logit-fc", layers="all")
    assert len(model.sites) == ROUTERS_PER_MODEL[arch]
    out = predict(model, guide, ids, mask, mode="mean")
    assert set(out.routing) == {s.name for s in model.sites}  # the Bayesian path really ran
    last = want[torch.arange(2), last_token_index(mask)]
    torch.testing.assert_close(out.logits, last, atol=1e-5, rtol=0)
    with torch.no_grad():  # no routing installed: the upstream forward, bit for bit
        assert torch.equal(hf(input_ids=ids, attention_mask=mask).logits, want)


@pytest.mark.parametrize("arch", ARCHS)
def test_router_logits_and_aux_loss_survive_bayesian_routing(arch):
    hf = tiny_model(arch)
    ids, mask = _batch()
    model, guide = bayesianize(hf, family="logit-mf", layers="last:1")
    inputs = {"input_ids": ids, "attention_mask": mask, "output_router_logits": True}
    policy = GuideRouting(guide, model.context(inputs))
    with torch.no_grad():
        out = run_routed(hf, inputs, model.sites, policy)
    assert len(out.router_logits) == ROUTERS_PER_MODEL[arch]
    assert all(
        r.shape == (14, s.num_experts)
        for r, s in zip(out.router_logits[-1:], model.sites, strict=True)
    )
    if getattr(out, "aux_loss", None) is not None:
        assert torch.isfinite(out.aux_loss)


@pytest.mark.parametrize("path", ["fused", "reference"])
@pytest.mark.parametrize("arch", ARCHS)
def test_svi_step_changes_guide_parameters_and_nothing_else(arch, path):
    hf = tiny_model(arch)
    before = _digest(hf)
    model, guide = bayesianize(hf, family="logit-fc", layers="all", num_data=4)
    g_before = _digest(guide)
    ids, mask = _batch(B=4)
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(64, (4,))}
    fit_svi(model, guide, data, SVIConfig(num_steps=1, batch_size=4, path=path, progress=False))
    assert _digest(hf) == before
    assert _digest(guide) != g_before
    assert not any(p.requires_grad for p in hf.parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_save_and_load_round_trip(arch, tmp_path):
    model, guide = bayesianize(tiny_model(arch), family="temperature", layers="last:2", prior=0.7)
    ids, mask = _batch(B=4)
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(64, (4,))}
    fit_svi(model, guide, data, SVIConfig(num_steps=2, batch_size=4, progress=False, lr=0.1))
    guide.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "router_adapter.safetensors",
        "router_adapter.json",
    }
    model2, guide2 = from_pretrained(tiny_model(arch), tmp_path)
    assert [s.name for s in model2.sites] == [s.name for s in model.sites]
    assert model2.prior.scale == 0.7
    for (k, a), (k2, b) in zip(
        guide.state_dict().items(), guide2.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)
    a = predict(model, guide, ids, mask, mode="mean").logits
    torch.testing.assert_close(predict(model2, guide2, ids, mask, mode="mean").logits, a)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        guide.save_pretrained(tmp_path)


def test_load_refuses_mismatched_models_and_says_what_differs(tmp_path):
    _, guide = bayesianize(tiny_model("mixtral"), family="logit-mf", layers="last:1")
    guide.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="router weight W_r differs"):
        from_pretrained(tiny_model("mixtral", seed=1), tmp_path)
    with pytest.raises(ValueError, match="architecture: adapter 'mixtral', model 'olmoe'"):
        from_pretrained(tiny_model("olmoe"), tmp_path)
    fewer = copy.deepcopy(tiny_model("mixtral"))
    fewer.model.layers = fewer.model.layers[:2]
    with pytest.raises(ValueError, match="MoE router count: adapter 3, model 2"):
        from_pretrained(fewer, tmp_path)
    other_k = tiny_model("mixtral")  # same weights, but routing one expert per token
    for layer in other_k.model.layers:
        layer.mlp.gate.top_k = 1
    with pytest.raises(ValueError, match="top_k adapter 2, model 1"):
        from_pretrained(other_k, tmp_path)


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_non_moe_models_get_a_clear_error(model_type):
    kw = {**COMMON, "num_hidden_layers": 2}
    if model_type == "gpt2":
        kw = dict(vocab_size=64, n_embd=32, n_layer=2, n_head=4)
    hf = AutoModelForCausalLM.from_config(
        AutoConfig.for_model(model_type, **kw), torch_dtype=torch.float32
    )
    with pytest.raises(
        ValueError, match=r"not a Mixture-of-Experts model.*Supported model types: .*deepseek_v3"
    ):
        bayesianize(hf)


@pytest.mark.parametrize("model_type", ["flex_olmo", "minimax"])
def test_generic_detection_finds_standard_routers_and_keeps_parity(model_type):
    experts = dict(num_experts=4, num_local_experts=4, num_experts_per_tok=2, head_dim=8)
    kw = {**COMMON, "num_hidden_layers": 2, **experts}
    if model_type == "minimax":
        kw.update(layer_types=["full_attention"] * 2, block_size=8)
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(
        AutoConfig.for_model(model_type, **kw), torch_dtype=torch.float32
    )
    hf = hf.eval()
    with torch.no_grad():
        for n, p in hf.named_parameters():
            if n.endswith("gate.weight"):
                p.normal_(0, 0.5)
    ids, mask = _batch()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask).logits[
            torch.arange(2), last_token_index(mask)
        ]
    model, guide = bayesianize(hf, family="logit-mf")
    assert len(model.sites) == 2
    torch.testing.assert_close(
        predict(model, guide, ids, mask, mode="mean").logits, want, atol=1e-5, rtol=0
    )


def test_bf16_model_keeps_router_math_and_guide_in_float32():
    hf = tiny_model("granitemoe", dtype=torch.bfloat16)
    ids, mask = _batch(B=4)
    model, guide = bayesianize(hf, family="logit-fc", layers="all")
    assert all(p.dtype == torch.float32 for p in guide.parameters())
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(64, (4,))}
    res = fit_svi(model, guide, data, SVIConfig(num_steps=1, batch_size=4, progress=False))
    assert torch.isfinite(torch.tensor(res.losses)).all()
    out = predict(model, guide, ids, mask)
    assert out.routing[model.sites[0].name].probs.dtype == torch.float32


@pytest.mark.parametrize("family", ["logit-mf", "logit-fc", "temperature"])
def test_float64_model_routes_and_fits_in_float64(family):
    hf = tiny_model("mixtral", dtype=torch.float64)
    hf.set_experts_implementation("eager")  # torch's grouped_mm has no float64 kernel
    ids, mask = _batch(B=4)
    model, guide = bayesianize(hf, family=family, layers="last:2")
    assert all(p.dtype == torch.float64 for p in guide.parameters())
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(64, (4,))}
    res = fit_svi(model, guide, data, SVIConfig(num_steps=2, batch_size=4, progress=False))
    assert torch.isfinite(torch.tensor(res.losses)).all()
    out = predict(model, guide, ids, mask, mode="mc", num_samples=3)
    assert out.routing[model.sites[0].name].probs.dtype == torch.float64


def test_model_loaded_with_from_pretrained_as_users_do(tmp_path):
    tiny_model("qwen2_moe").save_pretrained(tmp_path / "tiny")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny")
    model, guide = bayesianize(
        hf, family="logit-mf", layers="last:2", option_token_ids=[10, 11, 12, 13]
    )
    ids, mask = _batch()
    assert predict(model, guide, ids, mask).probs.shape == (2, 4)


def test_checkpointing_is_inert_in_eval_and_refused_in_training_mode():
    hf = tiny_model("mixtral")
    hf.activation_checkpointing_enable()
    model, guide = bayesianize(hf, family="logit-mf")
    ids, mask = _batch(B=4)
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(64, (4,))}
    res = fit_svi(model, guide, data, SVIConfig(num_steps=1, batch_size=4, progress=False))
    assert torch.isfinite(torch.tensor(res.losses)).all()
    hf.train()
    with pytest.raises(RuntimeError, match="would bypass the Bayesian routers"):
        fit_svi(model, guide, data, SVIConfig(num_steps=1, batch_size=4, progress=False))


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_analytic_prediction_on_every_architecture_is_close_to_many_draws(model_type):
    hf = tiny_model(model_type)
    ids, mask = _batch(B=2)
    model, guide = bayesianize(hf, family="logit-fc", layers="all", prior=0.05)
    torch.manual_seed(0)
    mc = predict(model, guide, ids, mask, mode="mc", num_samples=4000)
    exact = predict(model, guide, ids, mask, mode="analytic")
    torch.testing.assert_close(exact.probs, mc.probs, atol=0.02, rtol=0)
    for name, r in exact.routing.items():  # DeepSeek's sigmoid rule included
        assert torch.isfinite(r.probs).all() and (r.mutual_information >= 0).all(), name


def test_analytic_prediction_of_a_bf16_model_keeps_float32_router_math():
    hf = tiny_model("granitemoe", dtype=torch.bfloat16)
    ids, mask = _batch(B=2)
    model, guide = bayesianize(hf, family="logit-mf", layers="all")
    out = predict(model, guide, ids, mask, mode="analytic")
    assert out.routing[model.sites[0].name].probs.dtype == torch.float32


def test_dbrx_routes_through_its_ffn_without_a_second_copy_of_the_router_weight():
    from vmoer_ppl.integrations.hf.tiny import tiny_model as tiny_any_type

    hf = tiny_any_type("dbrx")
    keys = set(hf.state_dict())
    ids = torch.randint(3, 60, (3, 6))
    det = hf(ids).logits[:, -1].float()
    model, guide = bayesianize(hf, family="logit-fc", layers="all")
    assert [s.name for s in model.sites] == [f"transformer.blocks.{i}.ffn.router" for i in (0, 1)]
    assert set(hf.state_dict()) == keys  # W_r reachable as router.weight, stored once
    mask = torch.ones_like(ids)
    mean = predict(model, guide, ids, mask, mode="mean").logits
    torch.testing.assert_close(mean, det, rtol=1e-5, atol=1e-5)
    torch.manual_seed(0)
    sampled = predict(model, guide, ids, mask, mode="sample", num_samples=1).logits
    assert (sampled - det).abs().max() > 1e-4  # the Bayesian routing reaches the experts


@pytest.mark.parametrize("model_type", ["afmoe", "hunyuan_v1_moe"])
def test_a_router_with_a_nested_linear_keeps_one_copy_of_its_weights(model_type):
    from vmoer_ppl.integrations.hf.tiny import tiny_model as tiny_any_type

    hf = tiny_any_type(model_type)
    keys = set(hf.state_dict())
    model, _ = bayesianize(hf, family="logit-mf", layers="all")
    assert set(hf.state_dict()) == keys
    for site in model.sites:  # the alias is the nested Linear's own parameter
        inner = [c for c in site.router.children() if isinstance(c, torch.nn.Linear)]
        assert site.weight is inner[0].weight


def test_adapter_saved_under_the_scorer_s_earlier_name_loads_as_the_letter_scorer(tmp_path):
    import json

    hf = tiny_model("qwen2_moe")
    model, guide = bayesianize(hf, family="logit-mf", layers="last:1", option_token_ids=[10, 11])
    assert model.spec["scorer"] == "letter"
    guide.save_pretrained(tmp_path / "a")
    config = json.loads((tmp_path / "a" / "router_adapter.json").read_text())
    config["scorer"] = "next-token"  # what adapters wrote before one scorer vocabulary
    (tmp_path / "a" / "router_adapter.json").write_text(json.dumps(config))
    loaded, _ = from_pretrained(hf, tmp_path / "a")
    assert loaded.spec["scorer"] == "letter"
