"""Write a dense Llama-style model as a Mixtral model whose experts are its neuron groups.

Why Mixtral: its attention, RMSNorm, RoPE and embeddings are Llama's (the weights copy over
unchanged), its experts are SwiGLU MLPs, i.e. slices of the dense MLP, and its gate
(softmax over E, top-K, renormalised) has no extra multipliers to set. GraniteMoe would work
too, but needs its embedding/residual/attention/logit multipliers set to reproduce Llama.

Expert ``e`` holds the rows ``g_e`` of ``gate_proj``/``up_proj`` and the columns ``g_e`` of
``down_proj``, times ``K``: the renormalised gate values of the K selected experts sum to one, so
with equal gate values the block outputs the *sum* of the selected experts, which is the dense
MLP with the unselected neuron groups dropped. With K = E and a uniform router the MoE equals
the dense model exactly (``tests/embedded/test_convert.py``).
"""

from __future__ import annotations

import torch
from torch import nn


def mixtral_config(dense_config, num_experts: int, top_k: int):
    """A MixtralConfig reproducing a Llama config with E experts of width F / E."""
    from transformers import MixtralConfig

    c = dense_config
    if c.intermediate_size % num_experts:
        raise ValueError(
            f"num_experts={num_experts} must divide intermediate_size={c.intermediate_size}"
        )
    rope = getattr(c, "rope_parameters", None) or {
        "rope_type": "default",
        "rope_theta": c.rope_theta,
    }
    return MixtralConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size // num_experts,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        head_dim=getattr(c, "head_dim", None),
        hidden_act=c.hidden_act,
        max_position_embeddings=c.max_position_embeddings,
        rms_norm_eps=c.rms_norm_eps,
        rope_parameters=rope,
        tie_word_embeddings=c.tie_word_embeddings,
        num_local_experts=num_experts,
        num_experts_per_tok=top_k,
        router_jitter_noise=0.0,
        output_router_logits=False,
        sliding_window=None,
        attention_dropout=0.0,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        pad_token_id=c.pad_token_id,
    )


@torch.no_grad()
def dense_to_mixtral(
    dense: nn.Module,
    groups: list[torch.Tensor],
    routers: list[torch.Tensor],
    top_k: int,
    downs: list[torch.Tensor] | None = None,
):
    """Build the Mixtral model.

    Parameters
    ----------
    dense : nn.Module
        ``LlamaForCausalLM``.
    groups : list of torch.Tensor
        Per layer, `(E, F / E)` neuron indices of each expert.
    routers : list of torch.Tensor
        Per layer, router weight `(E, D)`.
    top_k : int
        K.
    downs : list of torch.Tensor, optional
        Per layer, a refitted down projection `(D, F)` in place of the dense one.

    Returns
    -------
    MixtralForCausalLM
        In eval mode, float32.
    """
    from transformers import MixtralForCausalLM

    E = groups[0].shape[0]
    moe = MixtralForCausalLM._from_config(
        mixtral_config(dense.config, E, top_k), dtype=dense.dtype
    ).eval()
    state = {k: v for k, v in dense.state_dict().items() if ".mlp." not in k}
    missing, unexpected = moe.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    for i, (layer, g, w) in enumerate(zip(dense.model.layers, groups, routers, strict=True)):
        mlp, block = layer.mlp, moe.model.layers[i].mlp
        gate, up, down = (
            mlp.gate_proj.weight,
            mlp.up_proj.weight,
            mlp.down_proj.weight,
        )  # (F,D),(F,D),(D,F)
        block.experts.gate_up_proj.copy_(torch.cat([gate[g], up[g]], dim=1))  # (E, 2F/E, D)
        block.experts.down_proj.copy_(top_k * down[:, g].permute(1, 0, 2))  # (E, D, F/E)
        block.gate.weight.copy_(w)
    left = [k for k in missing if ".mlp." not in k and "rotary" not in k]
    if left:
        raise RuntimeError(f"weights not copied from the dense model: {left[:5]}")
    return moe
