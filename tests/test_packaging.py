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


def test_wheel_installs_into_a_fresh_venv_and_its_command_runs(wheel, tmp_path):
    """pip install of the wheel (not editable) into a new venv; dependencies come from the
    locked environment through a .pth file, since this machine installs nothing from a hub."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "locked_deps.pth").write_text(deps + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, text=True)
    code = (
        "import vmoer_ppl, pathlib; p = pathlib.Path(vmoer_ppl.__file__); print(p); "
        "print((p.parent / 'py.typed').exists())"
    )
    res = subprocess.run(
        [str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert res.stdout.splitlines() == [str(Path(site) / "vmoer_ppl" / "__init__.py"), "True"]
    cli = subprocess.run(
        [str(venv / "bin" / "vmoer"), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert cli.returncode == 0 and "fit" in cli.stdout
