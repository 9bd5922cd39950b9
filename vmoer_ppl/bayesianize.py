"""``bayesianize``: one call from a frozen MoE network to a (model, guide) pair ready for SVI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from vmoer_ppl.adapter_io import architecture_name
from vmoer_ppl.families import as_family, family_of
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.infer.freeze import freeze
from vmoer_ppl.models.base import RouterModel
from vmoer_ppl.models.likelihoods import Likelihood
from vmoer_ppl.priors.shorthands import as_prior
from vmoer_ppl.scoring.names import parse_scorer, scorer_name
from vmoer_ppl.sites import RouterSite, find_routers, select_layers


def network_of(
    net: nn.Module, option_token_ids, scorer: str = "letter"
) -> tuple[nn.Module, list[RouterSite]]:
    """The answer network and every router site; transformers models get their adapter.

    Parameters
    ----------
    net : nn.Module
        A toy network with :class:`~vmoer_ppl.nn.Router` modules, or a transformers MoE.
    option_token_ids : sequence of int, optional
        Letter scorer: the option letters' token ids.
    scorer : str
        ``"letter"`` or ``"cloze[:sum|token|char]"`` (transformers models; see
        :func:`vmoer_ppl.scoring.names.parse_scorer`).

    Returns
    -------
    tuple
        ``(answer network, every router site)``.
    """
    if getattr(getattr(net, "config", None), "model_type", None) is not None:
        from vmoer_ppl.integrations.hf import NextTokenHead, install_adapter
        from vmoer_ppl.scoring.cloze import ClozeHead

        if getattr(net.config, "is_encoder_decoder", False):
            raise ValueError(
                f"{type(net).__name__} is an encoder-decoder MoE (capacity-limited expert "
                "routing, e.g. switch_transformers, nllb-moe): out of scope; vmoer_ppl routes "
                "decoder-only language models"
            )
        if cast(Any, net).get_output_embeddings() is None:
            raise ValueError(
                f"{type(net).__name__} has no language-model head, so answers cannot be scored: "
                "load the model with AutoModelForCausalLM (or AutoModelForImageTextToText for "
                "a vision-language model), not AutoModel"
            )
        patched = install_adapter(net)
        net.eval()  # frozen backbone: no dropout, no router jitter
        sites = [RouterSite(name, i, module) for i, (name, module) in enumerate(patched)]
        _, norm = parse_scorer(scorer)
        if norm is not None:
            return ClozeHead(net, norm), sites
        return NextTokenHead(net, option_token_ids), sites
    routers = find_routers(net)
    if not routers:
        raise ValueError(
            f"{type(net).__name__} has no vmoer_ppl Router module and is not a transformers "
            "model; build the network from vmoer_ppl.nn.Router or pass a transformers MoE model"
        )
    return net, routers


def bayesianize(
    net: nn.Module,
    family: str = "logit-fc",
    layers: str | int | Sequence[int] = "all",
    prior=None,
    beta: float = 0.01,
    *,
    likelihood: Likelihood | None = None,
    num_data: int = 1,
    trunk_dim: int | None = None,
    option_token_ids=None,
    scorer: str = "letter",
) -> tuple[RouterModel, RouterGuide]:
    """Make the routers of a frozen MoE network Bayesian.

    Every pretrained parameter is frozen; only the returned guide has trainable parameters.

    Parameters
    ----------
    net : nn.Module
        A transformers MoE model (Mixtral, Qwen2/3-MoE, OLMoE, GraniteMoe(Shared),
        DeepSeek-V3, or one whose router generic detection recognises), or a network whose
        routers are :class:`vmoer_ppl.nn.Router` modules.
    family : RouterFamily or str
        ``"logit-mf"``, ``"logit-fc"``, ``"temperature"``, ``"temperature-expert"`` or ``"weight"``.
    layers : str, int or sequence of int
        ``"all"``, ``"last:N"`` or router indices.
    prior : Prior, float, dict or callable, optional
        The family's default when ``None`` (``N(l_det, I)`` for logits).
    beta : float
        KL weight β.
    likelihood : Likelihood, optional
        Default: categorical over the network's answer logits.
    num_data : int
        Training-set size (scales the KL of global latents).
    trunk_dim : int, optional
        Width of the amortisation trunk (default: the family's, D/4; D/16 for
        ``logit-lowrank``); ignored by the weight family. The width used is what adapters record.
    option_token_ids : sequence of int, optional
        transformers models only: the answer is the next token at the last real position,
        restricted to these ids (e.g. the option letters); the whole vocabulary if None.
    scorer : str
        transformers models only: ``"letter"`` (the paper's letter format, with
        ``option_token_ids``; ``"next-token"`` is its earlier name) or ``"cloze"`` /
        ``"cloze:sum|token|char"`` (each option scored as a continuation; inputs from
        :func:`vmoer_ppl.scoring.encode_cloze`). One vocabulary with the CLI's ``--scorer``.

    Returns
    -------
    tuple
        ``(model, guide)``.

    Examples
    --------
    >>> from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig
    >>> net = ToyMoEClassifier(ToyMoEConfig())
    >>> model, guide = bayesianize(net, family="logit-fc", layers="last:1")
    >>> [s.name for s in model.sites]
    ['layers.1.moe.router']
    """
    spec = family_of(family)
    original = net
    net, routers = network_of(net, option_token_ids, scorer)
    sites = select_layers(routers, layers)
    if hasattr(net, "first_layer"):  # cloze head: the frozen-prefix cache starts at this layer
        cast(Any, net).first_layer = decoder_layer_index(sites[0].name)
    freeze(net)
    prior = as_prior(prior, spec.default_prior())
    kwargs = {"likelihood": likelihood, "beta": beta, "num_data": num_data}
    model = spec.model_cls(net, sites, prior=prior, **kwargs, **spec.model_kwargs)
    model.spec = {
        "architecture": architecture_name(original),
        "num_routers": len(routers),
        "family": as_family(family),
        "beta": float(beta),
        "num_data": int(num_data),
        "scorer": scorer_name(scorer) if getattr(original, "config", None) is not None else None,
        "option_token_ids": plain_token_ids(option_token_ids),
    }
    guide = spec(model, **spec.build_kwargs(prior, sites, trunk_dim))
    model.spec["trunk_dim"] = getattr(guide, "trunk_dim", trunk_dim)  # the width it used
    guide.place(execution_device)
    return model, guide


def plain_token_ids(option_token_ids) -> list | None:
    """Option token ids as JSON-ready ints (one id, or a list of ids, per option)."""
    if option_token_ids is None:
        return None
    return [int(i) if isinstance(i, int) else [int(t) for t in i] for i in option_token_ids]


def decoder_layer_index(name: str) -> int:
    """Decoder-layer index in a router path such as ``model.layers.27.mlp.gate``.

    The layer list is ``layers`` (most families), ``blocks`` (DBRX) or ``h`` (GPT-style).
    """
    parts = name.split(".")
    for a, b in zip(parts, parts[1:], strict=False):
        if a in ("layers", "blocks", "h") and b.isdigit():
            return int(b)
    raise ValueError(f"cannot read a decoder-layer index from router path {name!r}")


def execution_device(module: nn.Module) -> torch.device:
    """Where ``module`` computes (its guide must live there).

    Its weights' device or, for weights offloaded by accelerate (``device_map`` with "cpu" or
    "disk" offload: on the meta device between calls), the device its hook moves them to.
    """
    for m in (module, *module.modules()):
        hook = getattr(m, "_hf_hook", None)
        device = getattr(hook, "execution_device", None)
        if device is not None:
            return torch.device(device)
    p = next(module.parameters(), None)
    if p is None or p.device.type == "meta":
        return torch.device("cpu")
    return p.device
