"""Links planted in a run directory redirect no write; every file is replaced atomically."""

import shutil

import pytest

from tests.pipeline.test_fit_cli import fit_args
from vmoer_ppl.cli import main
from vmoer_ppl.safe_files import refuse_links, write_text


def test_an_atomic_write_replaces_a_link_and_leaves_its_target_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "run" / "report.md"
    link.parent.mkdir()
    link.symlink_to(victim)
    write_text(link, "report")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "report"
    assert [p.name for p in link.parent.iterdir()] == ["report.md"]  # no temporary left


@pytest.mark.parametrize("planted", ["report.md", "plots", "adapters/logit-mf/extra"])
def test_a_run_with_a_planted_link_is_refused_before_any_write(setup, tmp_path, planted, capsys):
    model, data = setup
    run = tmp_path / "run"
    assert main(fit_args(model, data, run)) == 0
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    link = run / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_dir():
        shutil.rmtree(link)  # the fit wrote plots/ already
    link.symlink_to(victim if planted == "plots" else victim / "keep.txt")
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and planted.split("/")[-1] in err and "remove the link" in err
    assert [p.name for p in victim.iterdir()] == ["keep.txt"]
    assert (victim / "keep.txt").read_text() == "precious"
    assert not (run / "metrics.json").exists()
    assert main(fit_args(model, data, run, "--overwrite")) == 2  # fitting again: refused too


def test_a_run_directory_that_is_itself_a_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    with pytest.raises(ValueError, match="give the run directory's real path"):
        refuse_links(tmp_path / "alias")
