"""ArviZ export: groups, named dims, netCDF round trip; LOO comparison; `vmoer inspect`."""

import json

import pytest

from vmoer_ppl import bayesianize
from vmoer_ppl.data import make_counting_task
from vmoer_ppl.diagnostics import load_datatree, loo_compare, save_datatree, to_datatree
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

GROUPS = {"posterior", "posterior_predictive", "log_likelihood", "observed_data", "sample_stats"}


@pytest.mark.parametrize("family", ["logit-fc", "temperature-expert"])
def test_datatree_has_named_dims_and_round_trips(family, tmp_path):
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family=family)
    data = make_counting_task(10, max_len=8, seed=0)
    tree = to_datatree(model, guide, data, num_draws=4, losses=[3.0, 2.5, 2.0])
    assert set(tree.children) == GROUPS
    dims = {d for g in GROUPS for v in tree[g].ds.data_vars.values() for d in v.dims}
    assert not [d for d in dims if "_dim_" in d]
    assert dims <= {"chain", "draw", "layer", "question", "expert", "step"}
    post = tree["posterior"].ds
    latent = "logits" if family == "logit-fc" else "temperature"
    assert post[latent].dims == ("chain", "draw", "layer", "question", "expert")
    assert post[latent].shape == (1, 4, 2, 10, 4)
    assert list(post.coords["layer"].values) == [s.name for s in model.sites]
    assert (tree["observed_data"].ds["answer"].values == data["labels"].numpy()).all()
    assert (tree["log_likelihood"].ds["answer"].values <= 0).all()
    back = load_datatree(save_datatree(tree, tmp_path / "post.nc"))
    for g in GROUPS:
        assert back[g].ds.identical(tree[g].ds), g


def test_loo_compares_two_priors_and_reports_pareto_k():
    net = ToyMoEClassifier(ToyMoEConfig())
    data = make_counting_task(16, max_len=8, seed=1)
    trees = {}
    for scale in (1.0, 0.1):
        model, guide = bayesianize(net, family="logit-mf", prior=scale)
        trees[f"prior {scale}"] = to_datatree(model, guide, data, num_draws=8)
    res = loo_compare(trees)
    assert {r["name"] for r in res["table"]} == set(trees)
    assert res["table"][0]["elpd_diff"] == 0 and res["table"][1]["elpd_diff"] >= 0
    for k in res["pareto_k"].values():
        assert sum(v for n, v in k.items() if n != "share_above_0.7") == 16


def test_vmoer_inspect_on_a_fitted_tiny_run(tmp_path, monkeypatch, capsys):
    from tests.pipeline.test_demo import save_tiny
    from tests.pipeline.test_fit_cli import fit_args, write_jsonl
    from vmoer_ppl.cli import main

    monkeypatch.setenv("VMOER_PPL_CACHE", str(tmp_path / "cache"))
    model, data = save_tiny(tmp_path / "tiny"), write_jsonl(tmp_path / "qa.jsonl")
    run = tmp_path / "run"
    assert main(fit_args(model, data, run, "--families", "logit-mf", "temperature")) == 0
    capsys.readouterr()
    args = ["inspect", str(run), "--num-draws", "4", "--n-questions", "4", "--num-samples", "3"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "elpd_loo" in printed and "logit-mf" in printed
    pngs = ["ppc", "routing_entropy", "scale_forest_logit-mf", "temperature_temperature"]
    for name in (f"inspect_{p}.png" for p in pngs):
        assert (run / "plots" / name).stat().st_size > 1000, name
    tree = load_datatree(run / "posteriors" / "temperature.nc")
    assert tree["sample_stats"].ds.sizes["step"] == 4
    assert "elpd_loo" in (run / "loo.md").read_text()
    assert json.loads((run / "fit.json").read_text())
