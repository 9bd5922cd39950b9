"""The tiny-model builder keeps the relations a config's validation demands between its sizes."""

from vmoer_ppl.integrations.hf.tiny import TINY_SIZES, _shrink, tiny_config


def test_per_layer_overrides_are_shrunk_as_their_layers_config_under_padded_keys():
    # Dots-3 style: the base heads are not nope + rope, a sliding layer's are (256 = 192 + 64);
    # per-layer keys are zero-padded strings
    base = {"num_hidden_layers": 4, "hidden_size": 1024, "num_attention_heads": 8}
    base |= {"head_dim": 256, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64}
    base["layer_types"] = ["full", "full", "sliding", "sliding"]
    base["per_layer_config"] = {"02": {"num_attention_heads": 16, "qk_nope_head_dim": 192}}
    out = _shrink(base)
    (kept,) = [i for i, kind in enumerate(out["layer_types"]) if kind == "sliding"]
    layer = {**base, **out, **out["per_layer_config"][kept]}
    assert layer["head_dim"] == layer["qk_nope_head_dim"] + layer["qk_rope_head_dim"]
    assert out["head_dim"] == TINY_SIZES["head_dim"]  # the base's relation did not hold: not forced
    assert layer["num_attention_heads"] == TINY_SIZES["num_attention_heads"]


def test_adapters_between_towers_take_the_tiny_width():
    config = tiny_config("dots3_note")
    width = TINY_SIZES["hidden_size"]
    assert config.vision_config.adapter_in_dim == config.vision_config.hidden_size == width
    assert config.vision_config.adapter_out_dim == config.text_config.hidden_size == width
