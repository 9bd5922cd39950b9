"""models/ and guides/ live at the repository root and ship as vmoer_ppl.models / .guides."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(out),
        str(ROOT),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return next(out.glob("vmoer_ppl-*.whl"))


def test_wheel_contains_models_and_guides_under_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in [
        "vmoer_ppl/models/logit_router.py",
        "vmoer_ppl/models/temperature_router.py",
        "vmoer_ppl/models/weight_router.py",
        "vmoer_ppl/guides/logit_full_cov.py",
        "vmoer_ppl/guides/temperature.py",
        "vmoer_ppl/nn/gates.py",
    ]:
        assert path in names
    assert not any(n.startswith(("models/", "guides/", "tests/")) for n in names)


def test_wheel_imports_from_a_clean_location(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path / "site")
    code = "import vmoer_ppl.models as m, vmoer_ppl.guides as g; print(m.__file__, g.__file__)"
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path / "site")},
        check=True,
    )
    assert str(tmp_path / "site" / "vmoer_ppl" / "models") in res.stdout
