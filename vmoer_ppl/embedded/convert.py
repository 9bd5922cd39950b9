"""Write a dense Llama-style model as a Qwen2-MoE model: dense FFNs below, MoE FFNs on top.

Why Qwen2-MoE: it mixes dense and MoE layers exactly as the real families do
(``mlp_only_layers``; DeepSeek's ``first_k_dense_replace``, Llama-4's interleaving), its dense
layers are Llama's SwiGLU MLP under the same parameter names, and with ``qkv_bias=False`` its
attention, RMSNorm, RoPE and embeddings are Llama's: every dense layer copies over bit for bit.

An MoE layer splits the dense FFN's F neurons into a shared expert (S always-active neurons,
Qwen/DeepSeek style) and E routed experts of (F − S) / E neurons each. Routed expert ``e`` holds the
rows ``g_e`` of ``gate_proj``/``up_proj`` and the columns ``g_e`` of ``down_proj``, times ``K``: the
renormalised gate values of the K selected experts (``norm_topk_prob``) sum to one, so with equal
gate values the block adds the selected groups' outputs unchanged. The shared expert's gate is
``sigmoid(0) = 1/2`` (a zero ``shared_expert_gate``), so its down projection is doubled. With K = E
and a uniform router the MoE equals the dense model (``tests/embedded/test_convert.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class MoELayer:
    """The split of one dense FFN.

    Attributes
    ----------
    groups : torch.Tensor
        `(E, (F − S) / E)` neuron indices of each routed expert.
    shared : torch.Tensor
        `(S,)` neuron indices of the shared expert.
    router : torch.Tensor
        `(E, D)` router weight.
    down : torch.Tensor or None
        `(D, F)` down projection to use instead of the dense one (refitted), dense neuron order.
    """

    groups: torch.Tensor
    shared: torch.Tensor
    router: torch.Tensor
    down: torch.Tensor | None = None


#: Settings the MoE config takes from the dense one unchanged.
COPIED = (
    "vocab_size",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


def qwen2_moe_config(
    dense_config, moe_layers: list[int], num_experts: int, top_k: int, shared: int
):
    """A Qwen2MoeConfig reproducing a Llama config, MoE in ``moe_layers`` only.

    Raises
    ------
    ValueError
        If E does not divide the routed width F − S, or S is not positive.
    """
    from transformers import Qwen2MoeConfig

    c, F = dense_config, dense_config.intermediate_size
    if shared <= 0 or (F - shared) % num_experts:
        raise ValueError(
            f"shared={shared} must be positive and num_experts={num_experts} must divide "
            f"intermediate_size - shared = {F - shared}"
        )
    rope = getattr(c, "rope_parameters", None) or {
        "rope_type": "default",
        "rope_theta": c.rope_theta,
    }
    L = c.num_hidden_layers
    return Qwen2MoeConfig(
        **{k: getattr(c, k) for k in COPIED},
        intermediate_size=F,  # the dense layers' MLP
        moe_intermediate_size=(F - shared) // num_experts,
        shared_expert_intermediate_size=shared,
        num_hidden_layers=L,
        head_dim=getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads,
        rope_parameters=rope,
        num_experts=num_experts,
        num_experts_per_tok=top_k,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        mlp_only_layers=[i for i in range(L) if i not in set(moe_layers)],
        qkv_bias=False,
        use_sliding_window=False,
        output_router_logits=False,
        attention_dropout=0.0,
    )


@torch.no_grad()
def _fill_block(block: nn.Module, mlp: nn.Module, spec: MoELayer, top_k: int) -> None:
    """Copy one dense MLP's neurons into a Qwen2-MoE sparse block."""
    gate, up = mlp.gate_proj.weight, mlp.up_proj.weight  # (F, D), (F, D)
    down = mlp.down_proj.weight if spec.down is None else spec.down  # (D, F)
    g, s = spec.groups, spec.shared
    block.experts.gate_up_proj.copy_(torch.cat([gate[g], up[g]], dim=1))  # (E, 2F_e, D)
    block.experts.down_proj.copy_(top_k * down[:, g].permute(1, 0, 2))  # (E, D, F_e)
    block.gate.weight.copy_(spec.router)  # (E, D)
    block.shared_expert.gate_proj.weight.copy_(gate[s])  # (S, D)
    block.shared_expert.up_proj.weight.copy_(up[s])  # (S, D)
    block.shared_expert.down_proj.weight.copy_(2 * down[:, s])  # (D, S): sigmoid(0) = 1/2
    block.shared_expert_gate.weight.zero_()


@torch.no_grad()
def dense_to_moe(dense: nn.Module, layers: dict[int, MoELayer], top_k: int):
    """Build the Qwen2-MoE model.

    Parameters
    ----------
    dense : nn.Module
        ``LlamaForCausalLM``.
    layers : dict of int to MoELayer
        The layers to make MoE and their splits; every other layer stays dense.
    top_k : int
        K.

    Returns
    -------
    Qwen2MoeForCausalLM
        In eval mode, in the dense model's dtype.
    """
    from transformers import Qwen2MoeForCausalLM

    first = next(iter(layers.values()))
    E, S = first.groups.shape[0], first.shared.numel()
    cfg = qwen2_moe_config(dense.config, sorted(layers), E, top_k, S)
    moe = Qwen2MoeForCausalLM._from_config(cfg, dtype=dense.dtype).eval()
    moe_keys = tuple(f"model.layers.{i}.mlp." for i in layers)
    state = {k: v for k, v in dense.state_dict().items() if not k.startswith(moe_keys)}
    missing, unexpected = moe.load_state_dict(state, strict=False)
    if unexpected:
        raise RuntimeError(f"dense weights with no place in the MoE model: {unexpected[:5]}")
    for i, spec in layers.items():
        _fill_block(moe.model.layers[i].mlp, dense.model.layers[i].mlp, spec, top_k)
    left = [k for k in missing if not k.startswith(moe_keys) and "rotary" not in k]
    if left:
        raise RuntimeError(f"weights not copied from the dense model: {left[:5]}")
    return moe
