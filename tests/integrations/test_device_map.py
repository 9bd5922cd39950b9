"""A model loaded with a device_map that offloads layers (accelerate) fits like the plain one."""

import json

import pyro
import torch
from transformers import AutoModelForCausalLM

from tests.integrations.tiny_hf import tiny_model
from vmoer_ppl import SVIConfig, bayesianize, fit_svi, from_pretrained

SPLIT = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.layers.2": "disk",
    "model.norm": "cpu",
    "lm_head": "cpu",
}


def fit_one(net):
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    model, guide = bayesianize(net, family="logit-fc", layers="last:2")
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 64, (4, 6), generator=g)
    data = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(64, (4,), generator=g),
    }
    return fit_svi(model, guide, data, SVIConfig(num_steps=2, progress=False)), guide


def test_offloaded_layers_fit_like_the_plain_model(tmp_path):
    torch.set_default_dtype(torch.float32)  # an HF model in its usual dtype (conftest: float64)
    tiny_model("mixtral", dtype=torch.float32).save_pretrained(tmp_path / "m")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32)
    split = AutoModelForCausalLM.from_pretrained(
        tmp_path / "m", dtype=torch.float32, device_map=SPLIT, offload_folder=str(tmp_path / "off")
    )
    assert split.model.layers[2].mlp.gate.weight.device.type == "meta"  # really offloaded
    a, guide_a = fit_one(plain)
    b, guide_b = fit_one(split)
    assert all(p.device.type == "cpu" for p in guide_b.parameters())
    torch.testing.assert_close(torch.tensor(a.losses), torch.tensor(b.losses))
    for k, v in a.params.items():
        torch.testing.assert_close(b.params[k], v)
    # the adapter of an offloaded router hashes the real W_r (read back from the offload)
    guide_b.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "router_adapter.json").read_text())
    guide_a.save_pretrained(tmp_path / "plain")
    plain_cfg = json.loads((tmp_path / "plain" / "router_adapter.json").read_text())
    assert saved["routers"] == plain_cfg["routers"]
    _, again = from_pretrained(split, tmp_path / "adapter")
    for k, v in guide_b.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    assert split.model.layers[2].mlp.gate.weight.device.type == "meta"  # still offloaded
