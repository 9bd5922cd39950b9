"""One evaluated router's outputs and routing stability on an opened run (a worker's task).

:func:`~vmoer_ppl.pipeline.run_eval.evaluate_run` computes these for the deterministic router
and each fitted family, in its own process or, with ``--workers``, one router per task in worker
processes (:func:`router_task`); each router is seeded on its own, so the order does not matter.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vmoer_ppl.data.tensors import first_rows
from vmoer_ppl.evaluation.stability import routing_stability
from vmoer_ppl.evaluation.stability_prefix import StabilityInputs, stability_inputs
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.evaluate import bayesian_outputs, deterministic_outputs
from vmoer_ppl.pipeline.open_run import OpenedRun, open_run
from vmoer_ppl.pipeline.regime import regime_of
from vmoer_ppl.pipeline.run_dir import strip
from vmoer_ppl.pipeline.scaled_rows import scale_row
from vmoer_ppl.pipeline.workers import WORKER_MEMO, to_numpy, to_torch

#: How the baseline routers predict (and are probed for stability): Monte Carlo over their draws.
BASELINE_MODE = "mc"

#: The router every other is compared with.
DETERMINISTIC = "deterministic"


def vmoer_prediction(cfg: FitConfig) -> dict:
    """:func:`~vmoer_ppl.pipeline.evaluate.bayesian_outputs` settings of the VMoER rows."""
    ev = cfg.evaluation
    return {"num_samples": ev.num_samples, "mode": ev.predict_mode, "link": ev.link}


def deterministic_routers(opened: OpenedRun, timings: dict) -> tuple[dict, dict]:
    """Outputs of the deterministic router and of post-hoc temperature scaling; the regime.

    The regime (:func:`~vmoer_ppl.pipeline.regime.regime_of` of the deterministic answers on
    the validation split, its ``temperature`` the one temperature scaling applies) comes from
    the validation pass temperature scaling needs anyway.
    """
    t = time.perf_counter()
    data, head = opened.data, next(iter(opened.guides.values()))[0].net
    det = {
        k: deterministic_outputs(head, data[k], desc=f"deterministic {k}") for k in opened.eval_sets
    }
    val = deterministic_outputs(head, data["val"])["probs"]
    scaled, temp = scale_row(det, data, val, data["val"]["labels"])
    regime = regime_of(val, data["val"]["labels"], temperature=temp)
    timings["deterministic_s"] = time.perf_counter() - t
    return {DETERMINISTIC: det, "temperature-scaling": scaled}, regime


def vmoer_router(opened: OpenedRun, cfg: FitConfig, family: str, timings: dict) -> dict:
    """``{"vmoer-<family>": {set: outputs}}``: one fitted family, its draws seeded on their own."""
    bm, guide = opened.guides[family]
    t = time.perf_counter()
    torch.manual_seed(cfg.seed)
    how = vmoer_prediction(cfg)
    outs = {
        k: bayesian_outputs(bm, guide, opened.data[k], desc=f"{family} {k}", **how)
        for k in opened.eval_sets
    }
    timings[f"{family}_s"] = time.perf_counter() - t
    return {f"vmoer-{family}": outs}


def stability_probe(opened: OpenedRun, n: int, gammas) -> tuple[dict, dict]:
    """The first ``n`` ID test questions and the probe's arguments (noisy prefix states once)."""
    probe = first_rows(strip(opened.enc[opened.id_key]), n)
    prepared = None
    if "prompt_states" in opened.data[opened.id_key]:  # the frozen prefix: noisy states once per γ
        head = next(iter(opened.guides.values()))[0].net
        prepared = stability_inputs(head, probe, gammas, seed=0)
    return probe, {"gammas": gammas, "prepared": prepared}


def probe_arrays(probe: tuple[dict, dict]) -> dict:
    """:func:`stability_probe`'s result as NumPy arrays, to send to a worker process."""
    rows, kwargs = probe
    prepared = kwargs["prepared"]
    states = None if prepared is None else {"clean": prepared.clean, "noisy": prepared.noisy}
    return to_numpy({"rows": rows, "gammas": tuple(kwargs["gammas"]), "states": states})


def probe_from_arrays(arrays: dict) -> tuple[dict, dict]:
    """Inverse of :func:`probe_arrays`: ``(rows, routing_stability kwargs)``."""
    arrays = to_torch(arrays)
    states = arrays["states"]
    prepared = None if states is None else StabilityInputs(states["clean"], states["noisy"])
    return arrays["rows"], {"gammas": arrays["gammas"], "prepared": prepared}


def router_stability(opened: OpenedRun, cfg: FitConfig, router: str, probe, kwargs) -> dict:
    """Routing stability of ``router`` (``"deterministic"`` or a key of ``opened.guides``).

    Each router is probed as its answers were predicted: the VMoER families in the run's mode
    and link, the baselines in :data:`BASELINE_MODE`.
    """
    if router == DETERMINISTIC:
        bm = next(iter(opened.guides.values()))[0]
        return routing_stability(bm, None, probe, **kwargs)
    m, g = opened.guides[router]
    baseline = router in cfg.evaluation.baselines
    return routing_stability(
        m,
        g,
        probe,
        num_samples=cfg.evaluation.num_samples,
        mode=BASELINE_MODE if baseline else cfg.evaluation.predict_mode,
        link=cfg.evaluation.link,
        **kwargs,
    )


def router_row(router: str, cfg: FitConfig) -> str:
    """The results row of a router: ``vmoer-<family>`` for a fitted family, else its name."""
    fitted = router != DETERMINISTIC and router not in cfg.evaluation.baselines
    return f"vmoer-{router}" if fitted else router


def router_part(opened: OpenedRun, cfg: FitConfig, router: str) -> dict:
    """One router's outputs, in this process.

    Returns
    -------
    dict
        ``outs`` (row -> set -> outputs), ``regime`` (the deterministic router's validation
        regime, its ``temperature`` the post-hoc T; else None), ``stability`` (None: left to the
        caller) and ``timings``.
    """
    timings: dict = {}
    regime = None
    if router == DETERMINISTIC:
        outs, regime = deterministic_routers(opened, timings)
    else:
        outs = vmoer_router(opened, cfg, router, timings)
    return {"outs": outs, "regime": regime, "stability": None, "timings": timings}


def router_task(out: str, run: dict, cfg: FitConfig, router: str, probe: dict | None) -> dict:
    """One router's outputs, regime and stability in a worker process (``--workers``).

    The run is opened once per worker (:func:`~vmoer_ppl.pipeline.open_run.open_run`, its
    checks included) and kept for the worker's next router.

    Parameters
    ----------
    out : str
        The run directory.
    run : dict
        Its ``run.json``.
    cfg : FitConfig
        The settings as evaluated.
    router : str
        ``"deterministic"`` or a fitted family.
    probe : dict, optional
        :func:`probe_arrays` of the parent's :func:`stability_probe` (the noisy prefix states
        are computed once, not per router); None: no stability probe.

    Returns
    -------
    dict
        :func:`router_part`'s result with ``stability`` (None without a probe); arrays as NumPy.
    """
    key = ("evaluate", str(out))
    if key not in WORKER_MEMO:
        WORKER_MEMO.clear()
        WORKER_MEMO[key] = open_run(Path(out), run, cfg)
    opened = WORKER_MEMO[key]
    part = router_part(opened, cfg, router)
    if probe is not None:
        t = time.perf_counter()
        part["stability"] = router_stability(opened, cfg, router, *probe_from_arrays(probe))
        part["timings"][f"stability.{router}_s"] = time.perf_counter() - t
    return to_numpy(part)
