"""Generic detection for MoE architectures without a dedicated adapter: by structure, not name.

A router is a module below the model whose ``weight`` has shape ``(num_experts, hidden_size)``
(read from the text config, so multimodal wrappers work), with a ``top_k``, that returns the
``(logits, weights, experts)`` triple. Its logits are ``h Wᵀ`` plus the router's ``bias`` when it
has one (gpt-oss). Candidate gate rules come from its structure: the softmax rules always, and
the DeepSeek-style group-limited sigmoid rule when the router (or the MoE block that calls it)
keeps an ``e_score_correction_bias``, with the router's own group settings. The rule is not
guessed: each candidate is run against the router's own output on random inputs and the one
that reproduces it is used (to 1e-5 in float32; within two ulps of the router's dtype in bf16 or
fp16). If none does, the model is refused, with the reason.
"""

from __future__ import annotations

import functools
import inspect
import logging

import torch
from torch import nn

from vmoer_ppl.integrations.hf.base import HFAdapter, alias_linear, patch_router, router_logits
from vmoer_ppl.nn.gates import GateRule, route
from vmoer_ppl.nn.rules import (
    GroupLimitedSigmoidRule,
    GroupLimitedSoftmaxRule,
    GroupLimitedSqrtSoftplusRule,
    SparseMixerRule,
)

EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
BIAS = "e_score_correction_bias"
#: Names of the selection bias a router keeps or is handed by its MoE block (AFMoE: expert_bias).
BIASES = (BIAS, "expert_bias")

logger = logging.getLogger(__name__)


class Refusal(ValueError):
    """A router vmoer_ppl recognises but cannot route exactly; the message names the class."""


def num_experts(config) -> int | None:
    """The expert count of a config, under any of the usual names."""
    values = config.to_dict() if hasattr(config, "to_dict") else vars(config)  # no per-layer guard
    for key in EXPERT_KEYS:
        value = values.get(key)
        if isinstance(value, int) and value > 1:
            return value
    return None


def _attr(router: nn.Module, *names, default=None):
    for name in names:
        value = getattr(router, name, None)
        if value is not None:
            return value
    return default


def text_sizes(model) -> tuple[int | None, int | None]:
    """``(num_experts, hidden_size)`` of a model's text config (VLM wrappers included)."""
    config = model.config.get_text_config()
    return num_experts(config), getattr(config, "hidden_size", None)


def candidate_rules(router: nn.Module, block: nn.Module | None) -> list:
    """Gate rules a router's structure allows, most specific first."""
    held = [getattr(m, name, None) for name in BIASES for m in (router, block) if m is not None]
    bias = next((b for b in held if isinstance(b, torch.Tensor)), None)
    groups = _attr(router, "num_group", "n_group", default=1)
    topk_group = _attr(router, "topk_group", default=groups)
    norms = [router.norm_topk_prob] if hasattr(router, "norm_topk_prob") else [True, False]
    scale = _attr(
        router, "routed_scaling_factor", "router_scaling_factor", "route_scale", default=1.0
    )
    rules: list = []
    if isinstance(bias, torch.Tensor):
        for bias_on in ("scores", "logits"):
            rules += [
                GroupLimitedSigmoidRule(bias, groups, topk_group, n, scale, bias_on=bias_on)
                for n in norms
            ]
        rules += [GroupLimitedSqrtSoftplusRule(bias, groups, topk_group, n, scale) for n in norms]
    elif groups > 1 or scale != 1.0:  # grouped or scaled, no selection bias
        for cls in (GroupLimitedSoftmaxRule, GroupLimitedSigmoidRule):
            rules += [cls(None, groups, topk_group, n, scale) for n in norms]
    if isinstance(getattr(router, "router_jitter_noise", None), float):  # Phi-3.5-MoE
        rules.append(SparseMixerRule(router.router_jitter_noise))
    return rules + list(GateRule)


def _call(router: nn.Module, h: torch.Tensor, block: nn.Module | None):
    """The router's own output on `(N, D)` ``h`` (as `(1, N, D)` for routers that unpack 3 dims)."""
    try:
        return _call_2d(router, h, block)
    except ValueError as e:
        if "unpack" not in str(e):
            raise
        return _call_2d(router, h.unsqueeze(0), block)


def _call_2d(router: nn.Module, h: torch.Tensor, block: nn.Module | None):
    """The router's own output on ``h``, passing a block-held correction bias if it takes one.

    The bias is handed in when the router's next parameter is named as one (:data:`BIASES`),
    required (MiniMax-M2, HY-V3) or optional (LFM2-MoE), and the block holds that tensor.
    """
    params = list(inspect.signature(router.forward).parameters.values())[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    needed = [p.name for p in params if p.default is p.empty and p.kind in positional]
    after_h = params[0].name if params and params[0].kind in positional else None
    if after_h in BIASES and needed in ([], [after_h]):
        bias = getattr(block, after_h, None)  # LFM2-MoE: optional, the block always hands it
        if isinstance(bias, torch.Tensor):
            return router(h, bias)
    if needed:
        raise Refusal(
            f"{type(router).__name__} needs {needed} besides the hidden states (e.g. a hash "
            "router on token ids): routing that is not a function of the hidden state is out "
            "of scope"
        )
    return router(h)


def _agree(rule, logits, out, top_k: int, dtype: torch.dtype) -> bool:
    """Whether ``rule`` reproduces the router's (weights, experts) to ``dtype``'s precision."""
    ours = route(logits, top_k, rule)
    order = ours.experts.argsort(-1)
    same = torch.equal(ours.experts.sort(-1).values, out[2].sort(-1).values)
    if dtype in (torch.float32, torch.float64):
        tol = 1e-5
        if not same:
            return False
        rows = slice(None)
    else:  # near-ties may flip in a low-precision router; compare where the selections agree
        tol = 2 * torch.finfo(dtype).eps * max(1.0, out[1].float().abs().max().item())
        rows = (ours.experts.sort(-1).values == out[2].sort(-1).values).all(-1)
        if rows.float().mean() < 0.9:
            return False
    want = out[1].float().gather(-1, out[2].argsort(-1))[rows]
    return torch.allclose(ours.weights.float().gather(-1, order)[rows], want, atol=tol, rtol=0)


class GenericAdapter(HFAdapter):
    """Routers found by structure; gate rule identified by matching the router's own output."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}  # router class -> why it was refused

    def routers(self, model):
        """Modules with an `(E, D)` weight and an int ``top_k``, in layer order."""
        E, D = text_sizes(model)
        if E is None or D is None:
            return []
        return [
            (n, m)
            for n, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.Tensor)
            and tuple(m.weight.shape) == (E, D)
            and isinstance(getattr(m, "top_k", None), int)
            and not isinstance(m, nn.Embedding)
        ]

    def explain_missing(self, model) -> None:
        """Record why router-like modules (an int ``top_k``) were not taken as routers."""
        E, D = text_sizes(model)
        for m in model.modules():
            kind = type(m).__name__.lower()
            if not isinstance(getattr(m, "top_k", None), int) or not any(
                word in kind for word in ("router", "gating", "gate")
            ):
                continue
            w = getattr(m, "weight", None)
            linears = [c for c in m.modules() if isinstance(c, nn.Linear) and c is not m]
            if isinstance(w, torch.Tensor) and w.dim() == 2 and w.shape[1] == D:
                why = (
                    f"its weight is {tuple(w.shape)}, not (num_experts={E}, hidden_size={D}) "
                    "(shared or zero-computation experts routed with the others)"
                )
            elif len(linears) == 1 and linears[0].in_features == D:
                why = "its linear map is a Linear nested inside the router module"
            else:
                why = (
                    "it is not one linear map of the hidden state (an MLP router, or state "
                    "carried across layers)"
                )
            self.reasons.setdefault(
                type(m).__name__, f"{type(m).__name__}: {why}; not supported yet"
            )

    def expose_nested(self, model) -> None:
        """Routers whose map is one ``Linear`` inside them get its weight (and bias) as theirs.

        Aliases (:func:`~vmoer_ppl.integrations.hf.base.alias_linear`), so the state dict is
        unchanged. The rule is then identified against the router's own output as
        for any router; one that no rule reproduces is refused as before.
        """
        E, D = text_sizes(model)
        for m in model.modules():
            if not isinstance(getattr(m, "top_k", None), int) or isinstance(
                getattr(m, "weight", None), torch.Tensor
            ):
                continue
            linears = [c for c in m.children() if isinstance(c, nn.Linear)]
            if len(linears) == 1 and tuple(linears[0].weight.shape) == (E, D):
                alias_linear(m, linears[0])

    def install(self, model):
        """Patch every router whose rule is identified; remember why the others were not."""
        found, skipped = [], []
        self.expose_nested(model)
        if not self.routers(model):
            self.explain_missing(model)
        for name, router in self.routers(model):
            if not getattr(router, "_vmoer_router", False):
                block = model.get_submodule(name.rpartition(".")[0]) if "." in name else None
                try:
                    rule, weights_dtype, prepare = self.identify(router, block)
                except Refusal as e:
                    self.reasons[type(router).__name__] = str(e)
                    skipped.append(name)
                    continue
                patch_router(router, rule, weights_dtype, prepare=prepare)
            found.append((name, router))
        if found and skipped:  # DeepSeek-V4: hash routers first, learned routers after
            logger.warning(
                "%d of %d routers stay deterministic and cannot be made Bayesian (%s): %s",
                len(skipped),
                len(skipped) + len(found),
                ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else ""),
                "; ".join(self.reasons.values()),
            )
        return found

    def identify(self, router: nn.Module, block: nn.Module | None):
        """``(rule, weights_dtype, prepare)`` of a router, or :class:`Refusal` saying why not.

        ``prepare`` is None, or the input scale of a router whose logits are ``c · h Wᵀ`` (MUSE
        Spark's ``output_multiplier``): ``u = c · h`` gives the same logits as ``u Wᵀ``.
        """
        dtype = router.weight.dtype
        g = torch.Generator().manual_seed(0)
        h = torch.randn(256, router.weight.shape[1], generator=g).to(dtype)
        with torch.no_grad():
            out = _call(router, h, block)
            if not (isinstance(out, tuple) and len(out) == 3 and out[2].dtype == torch.int64):
                raise Refusal(
                    f"{type(router).__name__} does not return (logits, weights, experts): a "
                    "gate rule vmoer_ppl has no exact reproduction of yet"
                )
            logits = router_logits(router, h.float())  # rounded as the router rounds its own:
            if isinstance(out[0], torch.Tensor) and out[0].is_floating_point():
                logits = logits.to(out[0].dtype).float()
            scale = logit_scale(router, logits, out[0])
            prepare = None if scale is None else functools.partial(torch.mul, other=scale)
            logits = logits if scale is None else logits * scale
            for rule in candidate_rules(router, block):
                if _agree(rule, logits, out, router.top_k, dtype):
                    same = out[1].dtype == dtype and dtype != torch.float32
                    return rule, (lambda hidden: hidden.dtype) if same else _float32, prepare
        raise Refusal(
            f"{type(router).__name__}: no known gate rule reproduces its output (logits other "
            "than h·Wᵀ + b, e.g. soft-capped or scaled, or an unknown weighting)"
        )

    def gate_rule(self, router, config):
        """The identified rule, or None (see :meth:`identify`)."""
        try:
            return self.identify(router, None)[0]
        except Refusal:
            return None


def logit_scale(router: nn.Module, logits: torch.Tensor, returned) -> float | None:
    """``c`` when the router returns ``c · logits`` with ``c ≠ 1`` (and no bias), else None.

    Parameters
    ----------
    router : nn.Module
        The upstream router; a float attribute equal to the fitted ``c`` (to 1e-4) is taken
        exactly (MUSE Spark's ``output_multiplier``).
    logits : torch.Tensor
        `(N, E)` ``h Wᵀ`` as the router rounds it.
    returned : object
        The router's first output.

    Returns
    -------
    float or None
    """
    has_bias = isinstance(getattr(router, "bias", None), torch.Tensor)
    if has_bias or not isinstance(returned, torch.Tensor) or returned.shape != logits.shape:
        return None
    returned = returned.to(logits.dtype)
    c = float((returned * logits).sum() / (logits * logits).sum())
    if abs(c - 1) < 1e-3 or not torch.allclose(c * logits, returned, rtol=1e-2, atol=1e-4):
        return None
    named = [
        v for v in vars(router).values() if isinstance(v, float) and abs(v - c) < 1e-4 * abs(c)
    ]
    return named[0] if named else c


def _float32(hidden: torch.Tensor) -> torch.dtype:
    return torch.float32


__all__ = ["GenericAdapter", "Refusal", "candidate_rules", "num_experts", "patch_router"]
