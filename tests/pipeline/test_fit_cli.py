"""`vmoer fit` and `vmoer evaluate` on a tiny model and a local data file; bad inputs."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from tests.integrations.tiny_hf import COMMON
from tests.pipeline.test_demo import FAST, SMALL, save_tiny
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl.cli import build_parser, main
from vmoer_ppl.pipeline import FitConfig
from vmoer_ppl.pipeline.machine import machine, machine_label
from vmoer_ppl.settings import flat_values


def write_jsonl(path, n=40, bad=None):
    rows = [
        {
            "question": f"what is {i} plus one",
            "choices": [str(i + 1), str(i), "ten", "red"],
            "answer": 0,
        }
        for i in range(n)
    ]
    if bad == "missing":
        for r in rows:
            del r["answer"]
    if bad == "range":
        rows[3]["answer"] = 7
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("VMOER_PPL_CACHE", str(tmp_path / "cache"))
    return save_tiny(tmp_path / "tiny"), write_jsonl(tmp_path / "qa.jsonl")


def fit_args(model, data, out, *extra):
    ood = ["--ood", "arc_easy:test", "mmlu_law:test"]
    return ["fit", "--model", model, "--data", data, "--out", str(out), *SMALL, *FAST, *ood, *extra]


def test_fit_then_evaluate_on_a_local_file(setup, tmp_path, capsys):
    model, data = setup
    run = tmp_path / "run"
    extra = ["--families", "logit-fc", "--baselines", "ensemble", "swag", "--baseline-steps", "2"]
    assert main(fit_args(model, data, run, *extra)) == 0
    assert "vmoer evaluate" in capsys.readouterr().out
    cfg = FitConfig.load(run)
    assert cfg.families == ("logit-fc",) and cfg.dataset.n_train == 8 and cfg.dataset.name == data
    assert cfg.evaluation.baselines == ("ensemble", "swag")
    assert main(["evaluate", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["results"]) == {
        "deterministic",
        "temperature-scaling",
        "ensemble",
        "swag",
        "vmoer-logit-fc",
    }
    det = metrics["results"]["deterministic"]
    assert set(det) == {"id", "near:arc_easy", "far:mmlu_law", "stability"}
    assert metrics["meta"]["sizes"] == {
        "train": 8,
        "val": 4,
        "id:qa": 8,
        "near:arc_easy": 6,
        "far:mmlu_law": 6,
    }
    here = machine()  # where the numbers were computed: metrics.json, fit.json, report.md
    assert metrics["meta"]["machine"]["cpu_capability"] == here["cpu_capability"]
    assert json.loads((run / "fit.json").read_text())["machine"]["cpu"] == here["cpu"]
    assert f"Computed on: {machine_label(metrics['meta'])}." in (run / "report.md").read_text()
    fitted = json.loads((run / "fit.json").read_text())["regime"]  # before SVI, no stage 1
    assert fitted["source"] == "measured" and fitted["questions"] == 4
    regime = metrics["meta"]["regime"]  # the deterministic router on validation
    assert regime["questions"] == 4 and 0 <= regime["acc"] <= 1
    assert regime["temperature"] == metrics["results"]["temperature-scaling"]["temperature"]
    assert "Regime (deterministic router on the 4 validation" in (run / "report.md").read_text()
    st = metrics["results"]["swag"]["stability"]  # a baseline routes by MC: probed both ways
    assert st["draws"] is True and 0 < st["self_agreement"]["overall"] <= 1
    assert len(st["fresh"]["overall"]) == len(st["gamma"])
    assert det["stability"]["self_agreement"]["overall"] == 1.0 and not det["stability"]["draws"]
    assert "| swag |" in (run / "report.md").read_text().split("## Routing stability")[1]
    assert main(["evaluate", str(run)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    again = ["evaluate", str(run), "--overwrite", "--num-samples", "2"]
    assert main([*again, "--baselines", "map", "posterior-mean", "temperature-scaled"]) == 0
    results = json.loads((run / "metrics.json").read_text())["results"]
    assert set(results) == {
        "deterministic",
        "temperature-scaling",
        "map",
        "vmoer-logit-fc",
        "vmoer-logit-fc@mean",
        "vmoer-logit-fc+ts",
        "vmoer-logit-fc@mean+ts",
        "map+ts",
    }
    for row in ("vmoer-logit-fc", "vmoer-logit-fc@mean", "map"):
        scaled = results[f"{row}+ts"]
        assert scaled["temperature"] > 0 and "stability" not in scaled  # answers only
        assert scaled["id"]["acc"] == results[row]["id"]["acc"]  # T never changes an argmax
        assert "auroc_mutual_information" not in scaled["far:mmlu_law"]
    for score in ("mutual_information", "ilv"):  # MAP: a point estimate, no routing uncertainty
        assert results["map"]["far:mmlu_law"][f"auroc_{score}"] == 0.5
    assert "stability" in results["map"]
    assert "vmoer-logit-fc@mean" in (run / "report.md").read_text()
    assert (run / "plots" / "roc_vmoer-logit-fc-at-mean.png").exists()


def test_letter_scorer_fits_and_evaluates(setup, tmp_path):
    model, data = setup
    run = tmp_path / "letter"
    extra = ["--scorer", "letter", "--families", "logit-mf", "temperature"]
    assert main(fit_args(model, data, run, *extra, "--prior-scale", "0.3")) == 0
    priors = {
        f: json.loads((run / "adapters" / f / "router_adapter.json").read_text())["prior"]
        for f in ("logit-mf", "temperature")
    }
    assert priors["logit-mf"] == {"type": "gaussian", "scale": 0.3}
    assert priors["temperature"]["scale"] != 0.3  # the logit prior leaves the others alone
    assert main(["evaluate", str(run)]) == 0
    res = json.loads((run / "metrics.json").read_text())["results"]["vmoer-logit-mf"]["id"]
    assert 0 <= res["acc"] <= 1


@pytest.mark.parametrize(("layers", "routers"), [("all", [0, 1, 2]), ("0,2", [0, 2])])
def test_routers_from_the_first_layer_fit_and_evaluate_without_a_frozen_prefix(
    setup, tmp_path, layers, routers
):
    # the first Bayesian layer is 0, so nothing is below it to cache; the stability probe adds
    # its noise to the token inputs (it used to fail: "no frozen prefix"); indices as "0,2"
    model, data = setup
    run = tmp_path / "all"
    extra = ["--families", "logit-mf", "--layers", layers]
    assert main(fit_args(model, data, run, *extra)) == 0
    adapter = json.loads((run / "adapters" / "logit-mf" / "router_adapter.json").read_text())
    assert [r["index"] for r in adapter["routers"]] == routers
    assert main(["evaluate", str(run)]) == 0
    assert not list((tmp_path / "cache").glob("prefix/*.safetensors"))
    results = json.loads((run / "metrics.json").read_text())["results"]
    for row in ("deterministic", "vmoer-logit-mf"):
        st = results[row]["stability"]
        assert len(st["fresh"]["overall"]) == len(st["gamma"])
        assert all(0 <= j <= 1 for j in st["fresh"]["overall"])


def test_layers_the_model_lacks_are_refused_before_stage_1(setup, tmp_path, capsys):
    model, data = setup
    for layers in ("last:4", "5"):  # the tiny model has 3 routers
        run = tmp_path / layers.replace(":", "")
        assert main(fit_args(model, data, run, "--layers", layers, "--lora-steps", "2")) == 2
        err = capsys.readouterr().err
        assert "--layers" in err and "3 MoE routers" in err and "Traceback" not in err
        assert not (run / "stage1").exists() and not (tmp_path / "cache" / "stage1").exists()


def test_relative_prior_lr_grid_and_diagnostics_land_in_the_run(setup, tmp_path):
    model, data = setup
    run = tmp_path / "relative"
    extra = ["--prior-scale", "relative:0.5", "--lr-grid", "0.05", "0.001"]
    assert main(fit_args(model, data, run, *extra)) == 0
    rec = json.loads((run / "fit.json").read_text())["families"]["logit-mf"]
    spreads = rec["prior"]["logit_spread"]
    assert rec["prior"]["rule"] == "relative" and spreads
    assert rec["prior"]["scale"] == pytest.approx({k: 0.5 * v for k, v in spreads.items()})
    saved = json.loads((run / "adapters" / "logit-mf" / "router_adapter.json").read_text())
    assert saved["prior"]["type"] == "per-site"
    assert {k: v["scale"] for k, v in saved["prior"]["sites"].items()} == pytest.approx(
        rec["prior"]["scale"]
    )
    assert set(rec["lr_grid"]) == {"0.05", "0.001"}
    assert rec["lr_grid"][f"{rec['lr']:g}"] == min(rec["lr_grid"].values())  # kept: best val NLL
    assert len(rec["diagnostics"]) == len(rec["losses"])
    assert set(rec["diagnostics"][0]["routers"]) == set(spreads)
    for name, post in rec["posterior"].items():  # the kept guide against its prior
        assert post["prior_scale"] == pytest.approx(rec["prior"]["scale"][name])
        assert 0 <= post["overlap"] <= 1 and post["kl"] >= 0
    assert (run / "plots" / "fit_logit-mf.png").stat().st_size > 0


def test_an_unfinished_run_resumes_and_other_settings_are_refused(setup, tmp_path, capsys):
    model, data = setup
    run = tmp_path / "run"
    assert main(fit_args(model, data, run)) == 0
    (run / "fit.json").unlink()  # as if killed before the end
    assert main(fit_args(model, data, run)) == 0
    fit = json.loads((run / "fit.json").read_text())
    assert fit["families"]["logit-mf"]["resumed_from"] == 4  # the finished checkpoint
    assert main(fit_args(model, data, run, "--lr", "0.5")) == 2
    assert "other settings" in capsys.readouterr().err
    refused = tmp_path / "refused"  # a fit stopped before any output: its settings are replaced
    assert main(fit_args(model, write_jsonl(tmp_path / "bad.jsonl", bad="range"), refused)) == 2
    assert sorted(p.name for p in refused.iterdir() if p.name != ".vmoer.lock") == ["config.json"]
    assert main(fit_args(model, data, refused, "--lr", "0.5")) == 0
    assert FitConfig.load(refused).svi.lr == 0.5


def test_stage1_lora_adapts_attention_and_experts_not_routers(setup, tmp_path):
    model, data = setup
    run = tmp_path / "lora"
    assert main(fit_args(model, data, run, "--lora-steps", "3", "--lora-lr", "1e-2")) == 0
    assert (run / "stage1" / "adapter_config.json").exists()
    stage1 = json.loads((run / "stage1" / "regime.json").read_text())["val_after"]
    fitted = json.loads((run / "fit.json").read_text())["regime"]  # stage 1's, not measured again
    assert fitted == {**stage1, "source": "stage 1", "questions": 4}
    lora = json.loads((run / "stage1" / "adapter_config.json").read_text())
    assert set(lora["target_modules"]) == {"q_proj", "k_proj", "v_proj"}
    assert "experts.gate_up_proj" in lora["target_parameters"]
    from vmoer_ppl.pipeline.backbone import adapted
    from vmoer_ppl.pipeline.loading import load_model

    cfg = FitConfig.load(run)
    base, tok, _ = load_model(cfg)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    after = adapted(cfg, run, base, tok).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any("q_proj" in k for k in changed) and any("experts" in k for k in changed)
    assert not any(k.endswith("mlp.gate.weight") for k in changed)
    assert main(["evaluate", str(run)]) == 0  # re-applies stage 1 and matches the fingerprint


def test_stage1_on_the_suffix_adapts_only_layers_from_the_first_bayesian_one(
    setup, tmp_path, monkeypatch
):
    model, data = setup
    run = tmp_path / "suffix"
    extra = ["--lora-steps", "3", "--lora-lr", "1e-2", "--lora-scope", "suffix"]
    assert main(fit_args(model, data, run, *extra, "--layers", "last:1")) == 0
    lora = json.loads((run / "stage1" / "adapter_config.json").read_text())
    targets = list(lora["target_modules"]) + list(lora["target_parameters"])
    assert targets and all(t.startswith("model.layers.2.") for t in targets)  # 3 layers, last:1
    regime = json.loads((run / "stage1" / "regime.json").read_text())
    assert regime["first_layer"] == 2 and len(regime["losses"]) == 3
    for key in ("val_before", "val_after"):
        assert {"acc", "mean_confidence", "ece", "temperature", "overconfident"} <= set(regime[key])
    from vmoer_ppl.pipeline.backbone import adapted
    from vmoer_ppl.pipeline.loading import load_model, model_fingerprint

    cfg = FitConfig.load(run)
    base, tok, _ = load_model(cfg)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    prefix = model_fingerprint(base, below=2)
    after = adapted(cfg, run, base, tok)
    changed = {k for k in before if not torch.equal(before[k], after.state_dict()[k])}
    assert changed and all(k.startswith("model.layers.2.") for k in changed)
    assert model_fingerprint(after, below=2) == prefix  # the frozen-prefix cache stays valid
    assert model_fingerprint(after) != model_fingerprint(after, below=2)
    assert main(["evaluate", str(run)]) == 0
    # the same stage 1 in another run comes from the stage-1 cache, not from training
    import vmoer_ppl.pipeline.backbone as fit_mod

    def no_training(*args, **kwargs):
        raise AssertionError("stage 1 trained again")

    monkeypatch.setattr(fit_mod, "adapt_backbone", no_training)
    again = tmp_path / "again"
    assert main(fit_args(model, data, again, *extra, "--layers", "last:1")) == 0
    for name in ("adapter_model.safetensors", "regime.json"):
        assert (again / "stage1" / name).read_bytes() == (run / "stage1" / name).read_bytes()
    with pytest.raises(AssertionError, match="trained again"):  # other settings: a new key
        main(fit_args(model, data, tmp_path / "other", *extra, "--layers", "last:1", "--seed", "1"))


def test_bad_inputs_get_clear_messages(setup, tmp_path, capsys):
    model, data = setup
    dense = tmp_path / "dense"
    config = AutoConfig.for_model("llama", **COMMON)
    AutoModelForCausalLM.from_config(config).save_pretrained(dense)
    tiny_tokenizer().save_pretrained(dense)
    assert main(fit_args(str(dense), data, tmp_path / "d")) == 2
    assert "router" in capsys.readouterr().err.lower()
    assert main(fit_args(model, data, tmp_path / "none", "--families")) == 2
    assert "--families logit-mf" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()  # nothing written
    args = build_parser().parse_args(["fit", "--baselines", "--ood"])
    assert args.baselines == [] and args.ood == []  # "none of these"
    for bad, words in (("missing", "missing field"), ("range", "out of range")):
        path = write_jsonl(tmp_path / f"{bad}.jsonl", bad=bad)
        assert main(fit_args(model, path, tmp_path / bad)) == 2
        assert words in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(fit_args(model, data, run)) == 0
    other = save_tiny(tmp_path / "other", "mixtral")
    torch.manual_seed(5)
    m = AutoModelForCausalLM.from_pretrained(other)
    with torch.no_grad():
        m.model.layers[0].self_attn.q_proj.weight.add_(1.0)
    m.save_pretrained(other)
    assert main(["evaluate", str(run), "--model", other]) == 2
    assert "fitted on model" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(fit_args(model, "nosuchset", tmp_path / "x")) == 2
    assert "hub:" in capsys.readouterr().err


def test_help_documents_every_setting():
    text = build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    for flag in ("--model", "--data", "--families", "--layers", "--lora-steps", "--patience"):
        assert flag in text
    assert "(default: last:5)" in " ".join(text.split())


def test_an_ood_file_with_fewer_options_is_flagged_and_scored_per_option_count(
    setup, tmp_path, caplog
):
    model, data = setup
    two = tmp_path / "two.jsonl"
    rows = [
        {"question": f"is {i} even", "choices": ["yes", "no"], "answer": i % 2} for i in range(12)
    ]
    two.write_text("\n".join(json.dumps(r) for r in rows))
    run = tmp_path / "two"
    assert main(fit_args(model, data, run, "--ood", str(two))) == 0
    with caplog.at_level("WARNING", logger="vmoer_ppl.pipeline.evaluate"):
        assert main(["evaluate", str(run)]) == 0
    assert "options" in caplog.text and "log C" in caplog.text
    metrics = json.loads((run / "metrics.json").read_text())
    counts = metrics["meta"]["option_counts"]
    ood = next(k for k in counts if k != "id:qa" and "two" in k)
    assert counts[ood] == {"2": 6} and set(counts["id:qa"]) == {"4"}
    assert 0 <= metrics["results"]["deterministic"][ood]["auroc_answer_entropy"] <= 1
    assert "routing-level scores" in (run / "report.md").read_text().lower()


def test_analytic_prediction_is_a_run_setting_and_repeats_exactly(setup, tmp_path, capsys):
    model, data = setup
    run = tmp_path / "analytic"
    extra = ["--families", "logit-mf", "temperature", "--predict-mode", "analytic"]
    assert main(fit_args(model, data, run, *extra, "--prior-scale", "relative:0.5")) == 0
    assert FitConfig.load(run).evaluation.predict_mode == "analytic"
    nll = []
    for _ in range(2):
        assert main(["evaluate", str(run), "--overwrite", "--stability-questions", "0"]) == 0
        metrics = json.loads((run / "metrics.json").read_text())
        nll.append(
            {f: metrics["results"][f"vmoer-{f}"]["id"]["nll"] for f in ("logit-mf", "temperature")}
        )
    assert nll[0] == nll[1]  # no Monte Carlo noise in the answers
    assert (metrics["meta"]["predict_mode"], metrics["meta"]["link"]) == (
        "analytic",
        "second-order",
    )
    assert "closed-form routing probabilities" in (run / "report.md").read_text()
    argv = ["evaluate", str(run), "--overwrite", "--stability-questions", "0"]
    assert main([*argv, "--predict-mode", "mc"]) == 0
    assert json.loads((run / "metrics.json").read_text())["meta"]["predict_mode"] == "mc"
    capsys.readouterr()
    assert main(fit_args(model, data, tmp_path / "bad", "--predict-mode", "exact")) == 2
    assert "--predict-mode 'exact': use one of ['mc', 'analytic']" in capsys.readouterr().err


def test_a_run_saved_before_the_analytic_mode_keeps_predicting_by_monte_carlo(tmp_path):
    flat = flat_values(FitConfig(out=str(tmp_path)))  # config.json before the sections
    flat.pop("predict_mode")
    (tmp_path / "config.json").write_text(json.dumps(flat))
    assert FitConfig.load(tmp_path).evaluation.predict_mode == "mc"
    assert FitConfig().evaluation.predict_mode == "analytic"


def test_prior_scale_auto_fits_each_candidate_and_keeps_the_best_on_validation(setup, tmp_path):
    model, data = setup
    run = tmp_path / "auto"
    extra = ["--prior-scale", "auto:0.05,0.5,5", "--families", "logit-mf", "temperature"]
    assert main(fit_args(model, data, run, *extra)) == 0
    fit = json.loads((run / "fit.json").read_text())["families"]
    rec = fit["logit-mf"]
    grid = rec["prior_grid"]
    assert set(grid) == {"relative:0.05", "relative:0.5", "relative:5"}
    best = min(grid, key=grid.get)
    assert rec["prior"]["c"] == float(best.partition(":")[2])  # the kept fit is the best one
    assert min(v for _, v in rec["val_history"]) == pytest.approx(grid[best])
    adapter = json.loads((run / "adapters" / "logit-mf" / "router_adapter.json").read_text())
    assert adapter["prior_scale"]["c"] == rec["prior"]["c"]  # the choice travels with the adapter
    assert set(fit["temperature"]["prior_grid"]) == {"None"}  # no prior scale to tune there


def test_bad_auto_prior_candidates_are_refused(setup, tmp_path, capsys):
    model, data = setup
    assert main(fit_args(model, data, tmp_path / "r", "--prior-scale", "auto:0.5,-1")) == 2
    assert "prior scale" in capsys.readouterr().err
