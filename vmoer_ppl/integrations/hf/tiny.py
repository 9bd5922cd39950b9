"""Tiny random transformers MoE models of any registered model type, built from its config class.

Nothing is downloaded: the model type's own config class is instantiated with its defaults, and
every size field it has (in the text config and in each vision/audio sub-config) is replaced by
a small value, so that the modeling code, its router and its gate rule are upstream's while the
model has a few hundred thousand parameters. Router weights and biases are redrawn at random:
several families initialise them at zero, which ties every logit and hides a wrong gate rule.

Used by the coverage survey (:mod:`vmoer_ppl.integrations.hf.coverage`) and by anyone who wants
to try an architecture they cannot download.
"""

from __future__ import annotations

import torch
from transformers import (
    CONFIG_MAPPING,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
)

#: Size fields and their tiny values; only the fields a config already has are set.
TINY_SIZES = {
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 64,
    "moe_intermediate_size": 32,
    "expert_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "shared_intermediate_size": 32,
    "moe_shared_expert_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_layers": 2,
    "n_layers": 2,
    "depth": 1,
    "num_attention_heads": 4,
    "num_heads": 4,
    "n_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 16,
    "max_position_embeddings": 256,
    "d_model": 64,
    "embed_dim": 64,
    "out_hidden_size": 64,
    "text_hidden_size": 64,
    "audio_hidden_size": 64,
    "projection_dim": 64,
    "projector_hidden_size": 64,
    "num_experts": 8,
    "num_local_experts": 8,
    "n_routed_experts": 8,
    "moe_num_experts": 8,
    "num_experts_per_tok": 2,
    "top_k_experts": 2,
    "n_shared_experts": 1,
    "vocab_size_per_layer_input": 128,
    "hidden_size_per_layer_input": 16,
    "enable_moe_block": True,
    "moe_topk": 2,
    "moe_k": 2,
    "n_group": 2,
    "num_expert_group": 2,
    "topk_group": 1,
    "first_k_dense_replace": 0,
    "decoder_sparse_step": 1,
    "moe_layer_freq": 1,
    "mlp_only_layers": [],
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "qk_rope_head_dim": 16,
    "qk_nope_head_dim": 16,
    "qk_head_dim": 32,
    "v_head_dim": 16,
    "swa_head_dim": 16,
    "ffn_hidden_size": 64,
    "expert_ffn_hidden_size": 32,
    "moe_hidden_size": 32,
    "zero_expert_num": 2,
    "unpadded_vocab_size": 128,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "d_ff": 64,
    "d_kv": 16,
    "num_decoder_layers": 2,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
}
#: Qwen4-Exp's QSA token indexer: one key head, budget divisible by the compression ratio.
QWEN4_QSA = {
    "indexer_n_heads": 2,
    "indexer_kv_heads": 1,
    "indexer_head_dim": 16,
    "indexer_budget": 8,
    "indexer_compress_ratio": 4,
}
#: Fields a few types need beyond the sizes (a hybrid needs an attention layer among two).
TINY_OVERRIDES = {
    "granitemoehybrid": {"layer_types": ["linear_attention", "attention"]},
    "jamba": {"attn_layer_period": 2, "attn_layer_offset": 1},
    "zaya": {"num_experts_per_tok": 1},
    # LFM2-MoE: the per-layer kinds are derived from full_attn_idxs when None, and the first
    # num_dense_layers (2 by default) are dense: one conv and one attention layer, both MoE
    "lfm2_moe": {"layer_types": ["conv", "full_attention"], "num_dense_layers": 0},
    # Step-3.7's attention reads a sliding window its config leaves unset (None)
    "step3p7": {"text_config": {"sliding_window": 16}},
    # GLM-4.5V's text tower reads mrope_section (default [8, 12, 12], half the 64 rotary dims of
    # its 128-dim heads at partial_rotary_factor 0.5) from rope_parameters: 4 for the tiny heads
    "glm4v_moe": {
        "text_config": {
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "partial_rotary_factor": 0.5,
                "mrope_section": [2, 1, 1],
            }
        }
    },
    # Qwen4-Exp's indexed attention needs its token indexer (QSA) sized; the defaults leave it
    # unset (None), which the config accepts and the attention cannot build
    "qwen4_exp_text": QWEN4_QSA,
    "qwen4_exp": {"text_config": QWEN4_QSA},
    # the thinker's rope index reads vision_start_token_id, which its config class does not
    # define (the released config.json sets it; Qwen2.5-VL's id)
    "qwen3_omni_moe_thinker": {"vision_start_token_id": 151652},
    # MiMo-V2-Flash's sliding-window layers use twice the key/value heads: more than the tiny
    # query heads unless the key/value heads shrink with them (grouped 16:1 in the release)
    "mimo_v2_flash": {"num_key_value_heads": 1},
    # DeepSeek-OCR-2's text config leaves the per-layer MLP kinds and the routing sizes unset
    # (None); the released config.json sets them
    "deepseek_ocr2": {
        "text_config": {
            "mlp_layer_types": ["sparse", "sparse"],
            "num_experts_per_tok": 2,
            "n_group": 1,
            "topk_group": 1,
        }
    },
    # ERNIE-4.5-VL's text rope falls back to mrope_section [22, 22, 20] (64 rotary frequencies of
    # its 128-dim heads) when the config leaves it out: 8 for the tiny heads
    "ernie4_5_vl_moe": {
        "text_config": {
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 500000.0,
                "mrope_section": [3, 3, 2],
            }
        }
    },
    # DbrxAttention reads attn_config.rope_theta, which the config class does not define, and
    # clamps with clip_qkv; the released checkpoints' configs set both
    "dbrx": {
        "attn_config": {"rope_theta": 500000.0, "clip_qkv": 8.0},
        "ffn_config": {"moe_top_k": 2},
    },
}
#: Suffixes of ``adapter_*`` fields that are a tower's width (Dots-3's vision and audio adapters).
ADAPTER_WIDTHS = ("_in_dim", "_out_dim", "_input_size", "_output_size")
MAX_PARAMS = 10_000_000  # unlimited_ocr's tiny towers: 7.9 M
SUB_CONFIGS = ("text_config", "vision_config", "audio_config", "thinker_config", "talker_config")


def _tiny_value(key: str, default):
    """The tiny value of one field, in the default's own type (an int, or one per layer)."""
    value = TINY_SIZES[key]
    if default == 0 and key.endswith("head_dim"):  # a part the heads do not have (GLM-5's NoPE)
        return 0
    if isinstance(default, list) and not isinstance(value, list):
        return [value] * len(default)
    if default is None and key.endswith("_token_id"):
        return None
    return value


def _mrope(section: list[int], defaults: dict) -> list[int]:
    """Multimodal rope sections rescaled to the tiny head dimension (same proportions)."""
    old = defaults.get("head_dim") or defaults["hidden_size"] // defaults["num_attention_heads"]
    total = max(len(section), sum(section) * TINY_SIZES["head_dim"] // old)
    new = [max(1, v * total // sum(section)) for v in section]
    new[0] += total - sum(new)
    return new


def _kept_layers(defaults: dict, n: int) -> list[int]:
    """``n`` layer indices (or more) that cover every kind in the per-layer type lists.

    Hybrid models (linear + full attention, dense + sparse MLPs) need each kind present.
    """
    keep: list[int] = []
    for key, value in defaults.items():
        if key.endswith(("layer_types", "layers_block_type")) and isinstance(value, list):
            keep += [value.index(kind) for kind in dict.fromkeys(value)]
    keep = sorted(set(keep))
    extra = (i for i in range(n + len(keep)) if i not in keep)
    while len(keep) < n:
        keep.append(next(extra))
    return sorted(keep)


def _has_sizes(config: dict) -> bool:
    """Whether a (sub-)config dict holds a size field, at any depth (a tower inside a tower)."""
    return bool(TINY_SIZES.keys() & config.keys()) or any(
        isinstance(v, dict) and _has_sizes(v) for v in config.values()
    )


def _per_layer(per_layer: dict, keep: list[int], defaults: dict, base: dict) -> dict:
    """A per-layer override map for the kept layers, each entry shrunk as its layer's config.

    An entry holds only where a layer differs from the base config (Dots-3's sliding-window
    layers: more heads, ``head_dim = qk_nope + qk_rope`` where the base's is not). It is shrunk
    merged with the base and kept where the result differs from the shrunk base, so relations
    between its sizes hold as in the full config. Keys are layer indices, as ints or strings
    (``"02"``).
    """
    by_index = {int(k): v for k, v in per_layer.items() if str(k).isdigit()}
    shrunk_base, out = {**defaults, **base}, {}
    for new, old in enumerate(keep):
        entry = by_index.get(old)
        if not isinstance(entry, dict):
            continue
        merged = {**defaults, **entry}
        shrunk = {**merged, **_shrink({**merged, "per_layer_config": None})}
        moved = {k for k in TINY_SIZES if k in shrunk and shrunk[k] != shrunk_base.get(k)}
        out[new] = {k: shrunk[k] for k in {*entry, *moved}}  # the entry's fields, and sizes moved
    return out


def _shrink(defaults: dict) -> dict:
    """Tiny values for the size fields among ``defaults`` (a config's ``to_dict()``)."""
    out = {k: _tiny_value(k, defaults[k]) for k in TINY_SIZES if k in defaults}
    for key, value in defaults.items():  # adapters between towers: every tower's width is tiny
        if key.startswith("adapter_") and key.endswith(ADAPTER_WIDTHS) and isinstance(value, int):
            out[key] = TINY_SIZES["hidden_size"]
    for key, value in defaults.items():  # sub-configs: text/vision/audio, DBRX's ffn_config
        if isinstance(value, dict) and (key in SUB_CONFIGS or _has_sizes(value)):
            out[key] = {**value, **_shrink(value)}
    layers = defaults.get("num_hidden_layers")
    pattern = defaults.get("layers_block_type")  # Nemotron-H: the depth is this list's length
    if layers is None and isinstance(pattern, list) and len(pattern) > 1:
        layers = len(pattern)
        out.setdefault("num_hidden_layers", TINY_SIZES["num_hidden_layers"])
    if isinstance(layers, int) and "num_hidden_layers" in out:
        keep = _kept_layers(defaults, out["num_hidden_layers"])
        out["num_hidden_layers"] = len(keep)
        for key, value in defaults.items():  # lists with one entry per layer
            if isinstance(value, list) and len(value) == layers and layers > 1:
                out[key] = [value[i] for i in keep]
        per_layer = defaults.get("per_layer_config")
        if isinstance(per_layer, dict):
            out["per_layer_config"] = _per_layer(per_layer, keep, defaults, out)
    vocab = defaults.get("vocab_size")
    for key, value in defaults.items():  # the last class (a CTC blank) stays the last class
        if key.endswith("_token_id") and isinstance(vocab, int) and value == vocab - 1:
            out.setdefault(key, out.get("vocab_size", vocab) - 1)
    if "qk_head_dim" in out and defaults.get("head_dim") == defaults["qk_head_dim"]:
        out["head_dim"] = out["qk_head_dim"]  # MLA heads whose rotary part is a factor of head_dim
    parts = ("qk_nope_head_dim", "qk_rope_head_dim")
    if "head_dim" in out and all(k in out for k in parts):  # head_dim = nope + rope stays so
        if defaults.get("head_dim") == sum(defaults[k] for k in parts):
            out["head_dim"] = sum(out[k] for k in parts)
    rope = defaults.get("rope_parameters")
    if isinstance(rope, dict) and isinstance(rope.get("mrope_section"), list):  # sums to rotary/2
        out["rope_parameters"] = {**rope, "mrope_section": _mrope(rope["mrope_section"], defaults)}
    return out


def tiny_config(model_type: str, **overrides):
    """A small config of ``model_type`` built from its own config class.

    Parameters
    ----------
    model_type : str
        A key of transformers' ``CONFIG_MAPPING`` (e.g. ``"gpt_oss"``).
    **overrides
        Fields set after shrinking.

    Returns
    -------
    transformers.PretrainedConfig
    """
    cls = CONFIG_MAPPING[model_type]
    defaults = cls().to_dict()
    fields = _shrink(defaults)
    for key, value in TINY_OVERRIDES.get(model_type, {}).items():
        if isinstance(value, dict):  # a sub-config: merged into its (shrunk) defaults
            value = {**defaults.get(key, {}), **fields.get(key, {}), **value}
        fields[key] = value
    return cls(**{**fields, **overrides})


def randomise_routers(model: torch.nn.Module, seed: int = 0) -> None:
    """Redraw every router's weight (std 0.5) and bias-like buffers (std 0.1) in place.

    A router is any module with an ``(E, D)`` weight whose class name contains ``Router`` or
    ``Gate``, or a ``gate``/``router`` attribute path, or a ``Linear`` directly inside one (DBRX's
    ``router.layer``).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            kind = type(module).__name__.lower()
            parent = name.rsplit(".", 2)[-2] if name.count(".") else ""  # DBRX: router.layer
            inner = parent in ("gate", "router") and isinstance(module, torch.nn.Linear)
            routerish = leaf in ("gate", "router", "wg") or inner
            if not (routerish or "router" in kind or "gate" in kind):
                continue
            for pname, p in module.named_parameters(recurse=False):
                std = 0.5 if pname == "weight" else 0.1
                p.copy_(torch.randn(p.shape, generator=g) * std)
            for _, b in module.named_buffers(recurse=False):
                if b.is_floating_point():
                    b.copy_(torch.randn(b.shape, generator=g) * 0.1)


def _build(config):
    """The model with a language-model head when one is registered (causal LM, then VLM)."""
    for auto in (AutoModelForCausalLM, AutoModelForImageTextToText, AutoModel):
        try:
            return auto.from_config(config)
        except ValueError:  # no such head registered for this type
            continue
    raise ValueError(f"no model class registered for {type(config).__name__}")


def tiny_model(model_type: str, dtype: torch.dtype = torch.float32, seed: int = 0, **overrides):
    """A tiny random model of ``model_type`` (causal-LM head when it has one), in eval mode.

    Parameters
    ----------
    model_type : str
        A transformers model type.
    dtype : torch.dtype
        Parameter dtype.
    seed : int
        Seed of the initialisation and of the router redraw.
    **overrides
        Config fields set after shrinking.

    Returns
    -------
    transformers.PreTrainedModel
    """
    config = tiny_config(model_type, **overrides)
    with torch.device("meta"):  # count before allocating: a size field this file misses
        size = sum(p.numel() for p in _build(config).parameters())
    if size > MAX_PARAMS:
        raise ValueError(f"tiny {model_type} has {size:,} parameters: a size field is not shrunk")
    torch.manual_seed(seed)
    model = _build(config)
    randomise_routers(model, seed)
    return model.to(dtype).eval()
