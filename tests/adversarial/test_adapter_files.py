"""A shared adapter is data that must match its model: damaged or swapped files are named."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.common import toy_net, toy_pair
from vmoer_ppl.adapter_io import CONFIG_NAME, WEIGHTS_NAME
from vmoer_ppl.pretrained import from_pretrained


@pytest.fixture
def saved(tmp_path):
    _, guide = toy_pair("logit-mf")
    guide.save_pretrained(tmp_path / "a")
    _, other = toy_pair("logit-mf", seed=0, perturb=0.3)  # same model, other weights
    other.save_pretrained(tmp_path / "b")
    return tmp_path


def test_weights_swapped_in_from_another_adapter_are_refused(saved):
    (saved / "a" / WEIGHTS_NAME).write_bytes((saved / "b" / WEIGHTS_NAME).read_bytes())
    with pytest.raises(ValueError, match="not the file router_adapter.json was saved with"):
        from_pretrained(toy_net(), saved / "a")


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate-json", "is not valid JSON"),
        ("empty-json", "lacks"),
        ("truncate-weights", "SHA-256 differs"),
        ("extra-tensor", "unexpected \\['extra'\\]"),
    ],
)
def test_a_damaged_adapter_is_named_with_the_fix(saved, damage, message):
    path = saved / "a"
    config, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
    if damage == "truncate-json":
        config.write_text(config.read_text()[:50])
    elif damage == "empty-json":
        config.write_text("{}")
    elif damage == "truncate-weights":
        weights.write_bytes(weights.read_bytes()[:100])
    else:  # a tensor added, and the hash updated to match: the shape check still names it
        state = {**load_file(weights), "extra": torch.zeros(1)}
        save_file(state, weights)
        data = json.loads(config.read_text())
        data.pop("weights_sha256")
        config.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        from_pretrained(toy_net(), path)
    if damage != "empty-json":
        assert "save the adapter again" in str(
            pytest.raises(ValueError, from_pretrained, toy_net(), path).value
        )


def test_an_intact_adapter_still_loads_exactly(saved):
    _, guide = from_pretrained(toy_net(), saved / "a")
    want = load_file(saved / "a" / WEIGHTS_NAME)
    for k, v in guide.state_dict().items():
        torch.testing.assert_close(v, want[k], rtol=0, atol=0)
