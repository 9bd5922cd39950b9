"""``--workers``: families fitted and routers evaluated in spawned processes, as in one."""

import json
import math

import pytest
import torch

from tests.pipeline import worker_tasks
from tests.pipeline.test_fit_cli import fit_args, setup  # noqa: F401 (the fixture)
from vmoer_ppl.cli import main
from vmoer_ppl.pipeline import FitConfig
from vmoer_ppl.pipeline.run_eval import EvalSettings
from vmoer_ppl.pipeline.validate import validate_config
from vmoer_ppl.pipeline.workers import (
    check_workers,
    run_tasks,
    to_numpy,
    to_torch,
    worker_threads,
)


def numbers(tree, prefix=""):
    """Every number of a JSON tree by its path (strings and booleans left out)."""
    if isinstance(tree, dict):
        return {
            k: v for key, sub in tree.items() for k, v in numbers(sub, f"{prefix}/{key}").items()
        }
    if isinstance(tree, list):
        return {
            k: v for i, sub in enumerate(tree) for k, v in numbers(sub, f"{prefix}/{i}").items()
        }
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return {prefix: float(tree)}
    return {}


def close(a: dict, b: dict, rel=1e-6) -> list[str]:
    """The paths where two number maps differ beyond ``rel`` (or where one lacks a path)."""
    bad = sorted(set(a) ^ set(b))
    for k in set(a) & set(b):
        x, y = a[k], b[k]
        if not (math.isclose(x, y, rel_tol=rel, abs_tol=1e-9) or (math.isnan(x) and math.isnan(y))):
            bad.append(k)
    return bad


def test_workers_fit_and_evaluate_what_one_process_does(setup, tmp_path):  # noqa: F811
    model, data = setup
    extra = ["--families", "logit-mf", "temperature", "--prior-scale", "relative:0.5"]
    extra += ["--predict-mode", "analytic", "--baselines"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(fit_args(model, data, one, *extra)) == 0
    assert main(fit_args(model, data, two, *extra, "--workers", "2")) == 0
    fits = [json.loads((run / "fit.json").read_text())["families"] for run in (one, two)]
    assert list(fits[1]) == ["logit-mf", "temperature"]
    # histories, priors, posteriors: equal to float32 rounding (a worker runs 1 thread, not 2)
    assert close(numbers(fits[0]), numbers(fits[1])) == []
    for run in (one, two):
        assert (run / "adapters" / "temperature").is_dir()
        assert (run / "plots" / "fit_logit-mf.png").is_file()
    assert main(["evaluate", str(one)]) == 0  # the run's workers: 1
    assert main(["evaluate", str(two)]) == 0  # the run's workers: 2
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (one, two)]
    rows = ["deterministic", "temperature-scaling", "vmoer-logit-mf", "vmoer-temperature"]
    assert list(metrics[1]["results"]) == rows
    probed = [r for r in rows if "stability" in metrics[1]["results"][r]]
    assert probed == ["deterministic", "vmoer-logit-mf", "vmoer-temperature"]  # in the workers
    results = [numbers(m["results"]) for m in metrics]
    assert close(*results) == []
    assert "routers_s" in metrics[1]["meta"]["timings"]


def test_workers_are_checked():
    with pytest.raises(ValueError, match="pass --workers 1, or run without torchrun"):
        check_workers(2, processes=2)
    check_workers(2, processes=1)
    check_workers(1, processes=4)
    with pytest.raises(ValueError, match="--workers 0: must be an integer >= 1"):
        validate_config(FitConfig().replace(workers=0))
    with pytest.raises(ValueError, match="its own copy of the model over the devices"):
        validate_config(FitConfig().replace(workers=2, device_map="auto"))
    with pytest.raises(ValueError, match="--workers 0"):
        EvalSettings(workers=0).check()
    assert [worker_threads(w, 8) for w in (1, 2, 3, 16)] == [8, 4, 2, 1]


def test_worker_results_travel_as_numpy_and_come_back_as_tensors():
    tree = {"a": torch.arange(3.0), "b": [torch.ones(2, dtype=torch.float32), 1.5], "c": "x"}
    back = to_torch(to_numpy(tree))
    assert torch.equal(back["a"], tree["a"]) and back["b"][0].dtype == torch.float32
    assert back["b"][1] == 1.5 and back["c"] == "x"


def test_run_tasks_keeps_order_and_state_and_names_the_fix_when_a_worker_dies(
    tmp_path, monkeypatch
):
    got = run_tasks(worker_tasks.threads_and_dtype, [(1.5,), (2.5,)], workers=2)
    threads = worker_threads(2)
    assert got == [(threads, "torch.float64", 1.5), (threads, "torch.float64", 2.5)]  # conftest
    monkeypatch.chdir(tmp_path)  # after the forkserver started: a worker follows the parent
    monkeypatch.setenv("VMOER_WORKER_PROBE", "now")
    assert run_tasks(worker_tasks.where, [("VMOER_WORKER_PROBE",)], 1) == [(str(tmp_path), "now")]
    with pytest.raises(RuntimeError, match="pass fewer --workers"):
        run_tasks(worker_tasks.dies, [(0,)], workers=1)
