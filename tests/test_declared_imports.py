"""Every third-party module the library imports is named in pyproject.toml.

A module that only arrives through another package's requirements (scipy through arviz, say)
disappears the day that package drops it; the library must name what it imports.
"""

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("vmoer_ppl", "models", "guides")
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def modules(node: ast.AST) -> list[str]:
    """Top-level modules an import statement names (absolute imports only; [] otherwise)."""
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def library_trees():
    """``(path, module AST)`` of every library source file."""
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            yield path, ast.parse(path.read_text(), str(path))


def imported_top_levels() -> dict[str, set[str]]:
    """Top-level module name -> the library files that import it (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path, tree in library_trees():
        for node in ast.walk(tree):
            for name in modules(node):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def declared() -> tuple[set[str], set[str]]:
    """Canonical distribution names: (``[project] dependencies``, every optional extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = {
        canonicalize_name(Requirement(r).name)
        for reqs in project.get("optional-dependencies", {}).values()
        for r in reqs
    }
    return core, extras


def test_every_third_party_import_is_a_declared_dependency():
    dists = packages_distributions()
    core, extras = declared()
    own = {"vmoer_ppl"}
    missing = {}
    for module, files in sorted(imported_top_levels().items()):
        if module in sys.stdlib_module_names or module in own:
            continue
        names = {canonicalize_name(d) for d in dists.get(module, [])}
        assert names, f"{module} (imported by {sorted(files)}) is not installed"
        if not names & (core | extras):
            missing[module] = sorted(files)
    assert not missing, f"imported but not named in pyproject.toml dependencies: {missing}"


def test_optional_extras_are_imported_lazily():
    """A module only an extra names is imported inside a function, never at module level."""
    dists = packages_distributions()
    core, extras = declared()
    optional = {
        m for m, ds in dists.items() if {canonicalize_name(d) for d in ds} & (extras - core)
    }
    top_level = [
        (name, path.name)
        for path, tree in library_trees()
        for node in tree.body
        for name in modules(node)
        if name in optional
    ]
    assert not top_level, f"optional dependencies imported at module level: {top_level}"
