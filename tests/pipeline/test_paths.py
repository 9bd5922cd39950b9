"""Local paths in a run's settings are stored absolute: the run is found from any directory."""

from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.paths import absolute_paths


def test_data_ood_hub_and_model_paths_become_absolute_and_names_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    cfg = FitConfig().replace(
        model="model",
        data="sets/mine.jsonl",
        ood=("other.csv", "arc_easy:test"),
        hub_path="hub",
    )
    out = absolute_paths(cfg)
    assert out.model == str(tmp_path / "model")
    assert out.dataset.name == str(tmp_path / "sets" / "mine.jsonl")
    assert out.dataset.ood == (str(tmp_path / "other.csv"), "arc_easy:test")
    assert out.dataset.hub_path == str(tmp_path / "hub")
    hub_id = FitConfig().replace(model="org/not-here", data="openbookqa", ood=None)
    assert absolute_paths(hub_id) == hub_id  # a hub id and a packaged set are names
    assert absolute_paths(out) == out


def test_a_run_started_with_relative_paths_resumes_from_the_same_directory(tmp_path, monkeypatch):
    from vmoer_ppl.pipeline.run_dir import prepare_run_dir

    monkeypatch.chdir(tmp_path)
    old = FitConfig().replace(data="mine.jsonl", out=str(tmp_path / "run"))
    old.save(tmp_path / "run")  # as a run of an earlier version stored it
    (tmp_path / "run" / "run.json").write_text("{}")  # it had started
    prepare_run_dir(absolute_paths(old))  # the same command again: resumed, not refused


def test_a_data_folder_becomes_absolute_and_a_set_name_stays_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("shards", "sciq+support", "arc_easy:test"):
        (tmp_path / name).mkdir()  # folders that share a set's name do not shadow it
    cfg = FitConfig().replace(data="shards", ood=("shards", "arc_easy:test"))
    out = absolute_paths(cfg)
    assert out.dataset.name == str(tmp_path / "shards")
    assert out.dataset.ood == (str(tmp_path / "shards"), "arc_easy:test")
    pattern = absolute_paths(cfg.replace(data="snap/train-*.parquet")).dataset.name
    assert pattern == str(tmp_path / "snap" / "train-*.parquet")
    named = FitConfig().replace(data="sciq+support", ood=("hub:sciq",))
    assert absolute_paths(named) == named


def test_a_home_relative_path_from_a_config_file_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "model").mkdir()
    cfg = FitConfig().replace(model="~/model", data="~/sets/mine.jsonl", ood=("~/o.csv",))
    out = absolute_paths(cfg)
    assert out.model == str(tmp_path / "model")
    assert out.dataset.name == str(tmp_path / "sets" / "mine.jsonl")
    assert out.dataset.ood == (str(tmp_path / "o.csv"),)
