"""Which transformers MoE model types vmoer_ppl supports, measured on tiny random models.

:func:`moe_model_types` enumerates transformers' own registry (not a hand list): a model type
is an MoE type when its config (or its text config) has an expert count. :func:`check` puts a
tiny random model of one type (:mod:`vmoer_ppl.integrations.hf.tiny`) through what a user does:
``bayesianize`` (the last router, or the last one text runs through when a multimodal model ends
with another modality's router), mean-mode parity with the untouched model, one SVI step, MC
prediction; it
returns a :class:`Row` with the outcome — ``supported``, ``refused`` (a ``ValueError`` from
vmoer_ppl naming the reason) or ``crash`` (anything else, a bug) — and ``untestable`` when the
tiny model itself cannot be built or run by transformers.

Parity in bfloat16: upstream rounds its router in bfloat16 while vmoer_ppl computes the router
in float32, so the two differ by bf16 rounding. The tolerance is upstream's own: the bf16 model
with Bayesian routing in mean mode must be no further from the float32 model than twice the
untouched bf16 model is (plus 1e-3).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

import torch
from transformers import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_MAPPING_NAMES,
)

from vmoer_ppl.integrations.hf.generic import EXPERT_KEYS
from vmoer_ppl.integrations.hf.tiny import tiny_model


@dataclass
class Row:
    """Outcome of :func:`check` for one model type and dtype."""

    model_type: str
    dtype: str
    status: str  # supported | refused | crash | untestable
    detail: str = ""  # refusal message, error, or the parity error measured
    routers: int = 0
    rule: str = ""  # the gate rule identified, e.g. "softmax-topk-norm"
    router_class: str = ""  # the upstream router class followed


def moe_model_types() -> list[str]:
    """Every model type with a registered model class whose config has an expert-count field.

    Component configs (a wrapper's text or vision tower without a model class of its own) are
    not model types a user loads; their wrapper is listed instead.
    """
    models = set(MODEL_MAPPING_NAMES) | set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    types = []
    for model_type in sorted(models & set(CONFIG_MAPPING.keys())):
        try:
            config = CONFIG_MAPPING[model_type]()
            text = config.get_text_config()
        except Exception:  # noqa: BLE001 - a config that cannot be built with defaults
            continue
        # an expert-count field, even when its default is dense (Gemma-4: None, Hunyuan: 1), in
        # the config, its text config or a nested one (DBRX's ffn_config)
        dicts = [config.to_dict(), text.to_dict()]
        dicts += [v for v in dicts[0].values() if isinstance(v, dict)]
        if any(k in d for d in dicts for k in EXPERT_KEYS):
            types.append(model_type)
    return types


def _batch(vocab: int, B: int = 2, T: int = 7):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, min(vocab, 128), (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, T - 2 :] = 0
    return ids, mask


def _last_logits(hf, ids, mask) -> torch.Tensor:
    from vmoer_ppl.integrations.hf import last_token_index

    with torch.no_grad():
        out = hf(input_ids=ids, attention_mask=mask)
    logits = out.logits if hasattr(out, "logits") else out.last_hidden_state
    return logits[torch.arange(ids.shape[0]), last_token_index(mask)].float()


def _logits_and_modules_run(hf, ids, mask) -> tuple[torch.Tensor, set[str]]:
    """:func:`_last_logits` of one forward, and the names of the modules it called."""
    ran: set[str] = set()
    hooks = [
        m.register_forward_pre_hook(lambda *_, name=n: ran.add(name)) for n, m in hf.named_modules()
    ]
    try:
        return _last_logits(hf, ids, mask), ran
    finally:
        for h in hooks:
            h.remove()


def _last_text_router(hf, ran: set[str]) -> str | int:
    """``"last:1"``, or the index of the last router text runs through when that is another one.

    A multimodal MoE may end with a router of another modality (ERNIE-4.5-VL's vision experts
    in every layer); ``last:1`` would make that one Bayesian, which text never runs. The router
    list comes from a copy, so ``hf`` stays unpatched.
    """
    import copy

    from vmoer_ppl.integrations.hf import install_adapter

    try:
        names = [path for path, _ in install_adapter(copy.deepcopy(hf))]
    except ValueError:  # refused: bayesianize says why, in its own order of checks
        return "last:1"
    used = [i for i, name in enumerate(names) if name in ran]
    return "last:1" if not used or used[-1] == len(names) - 1 else used[-1]


def as_loaded(hf, dtype: torch.dtype):
    """``hf`` in ``dtype`` as ``from_pretrained(..., dtype=dtype)`` gives it to a user.

    A model class that keeps some weights in float32 under a half dtype
    (``_keep_in_fp32_modules_strict``: routers, correction biases, ...) goes
    through the real loading code (``save_pretrained`` to a temporary directory, then
    ``from_pretrained``); for the others ``from_pretrained`` casts every weight, as
    ``.to(dtype)`` does.
    """
    import tempfile

    if not getattr(hf, "_keep_in_fp32_modules_strict", None):
        return hf.to(dtype)
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        return type(hf).from_pretrained(tmp, dtype=dtype).eval()


def _refused_up_front(hf, row: Row) -> None:
    """A model that cannot run: mark ``row`` refused if bayesianize refuses it by name."""
    from vmoer_ppl import bayesianize

    try:
        bayesianize(hf, family="logit-fc", layers="last:1")
    except ValueError as refusal:
        row.status, row.detail = "refused", str(refusal)[:300]
    except Exception:  # noqa: BLE001 - untestable stays untestable
        pass


def _parity(model, guide, ids, mask, exact, want, dtype) -> tuple[float, float]:
    """``(error, tolerance)`` of mean-mode prediction against the untouched model's logits.

    float32: 1e-5. Lower precision: twice the model's own rounding error (``want`` against the
    float32 ``exact``) plus 1e-3.
    """
    from vmoer_ppl import predict

    got = predict(model, guide, ids, mask, mode="mean").logits.float()
    err = (got - exact).abs().max().item()
    if dtype == torch.float32:
        return err, 1e-5
    return err, 2 * (want - exact).abs().max().item() + 1e-3


def _svi_and_mc(model, guide, ids, mask) -> None:
    """One SVI step (finite loss) and an MC prediction; raises on failure."""
    from vmoer_ppl import SVIConfig, fit_svi, predict

    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([5, 6])}
    res = fit_svi(model, guide, data, SVIConfig(num_steps=1, batch_size=2, progress=False))
    if not torch.isfinite(torch.tensor(res.losses)).all():
        raise FloatingPointError(f"SVI loss {res.losses}")
    predict(model, guide, ids, mask, mode="mc", num_samples=2)


def _tiny_and_reference(model_type: str, dtype: torch.dtype, row: Row) -> tuple | None:
    """The tiny model in ``dtype`` with its batch and reference logits; ``None`` when untestable.

    Returns
    -------
    tuple or None
        ``(model, ids, mask, exact float32 logits, the model's own logits in dtype, modules
        run)``; ``None`` (``row`` says why) when transformers cannot build or run it.
    """
    hf = None
    try:
        hf = tiny_model(model_type, dtype=torch.float32)
        ids, mask = _batch(hf.config.get_text_config().vocab_size)
        exact, ran = _logits_and_modules_run(hf, ids, mask)
        if dtype == torch.float32:  # the model's own logits are the exact ones
            return hf, ids, mask, exact, exact, ran
        hf = as_loaded(hf, dtype)
        return hf, ids, mask, exact, _last_logits(hf, ids, mask), ran
    except Exception as e:  # noqa: BLE001 - transformers cannot build or run this tiny model
        row.detail = f"tiny model: {type(e).__name__}: {str(e)[:160]}"
        if hf is not None:  # built but cannot run: refused up front all the same?
            _refused_up_front(hf, row)
        return None


def check(model_type: str, dtype: torch.dtype = torch.float32) -> Row:
    """Put a tiny random ``model_type`` model through bayesianize, parity, SVI and prediction.

    Parameters
    ----------
    model_type : str
        A transformers model type.
    dtype : torch.dtype
        ``torch.float32`` (parity ≤ 1e-5) or ``torch.bfloat16`` (parity within bf16 rounding).

    Returns
    -------
    Row
    """
    from vmoer_ppl import bayesianize

    row = Row(model_type, str(dtype).removeprefix("torch."), "untestable")
    built = _tiny_and_reference(model_type, dtype, row)
    if built is None:
        return row
    hf, ids, mask, exact, want, ran = built
    try:
        layers = _last_text_router(hf, ran)
        model, guide = bayesianize(hf, family="logit-fc", layers=layers)
    except ValueError as e:
        row.status, row.detail = "refused", str(e).split(". Supported")[0][:300]
        return row
    except Exception:  # noqa: BLE001 - a bug: report, do not hide
        row.status, row.detail = "crash", traceback.format_exc(limit=-3)[-600:]
        return row
    row.routers = len(model.sites)
    router = model.sites[-1].router
    row.router_class, rule = type(router).__name__, router.gate_rule
    row.rule = getattr(rule, "value", None) or repr(rule)
    try:
        err, tol = _parity(model, guide, ids, mask, exact, want, dtype)
        if not err <= tol:  # NaN fails too
            row.status, row.detail = "crash", f"parity error {err:.2e} > {tol:.2e}"
            return row
        _svi_and_mc(model, guide, ids, mask)
    except Exception:  # noqa: BLE001
        row.status, row.detail = "crash", traceback.format_exc(limit=-3)[-600:]
        return row
    row.status, row.detail = "supported", f"parity {err:.1e} (tol {tol:.1e})"
    return row
