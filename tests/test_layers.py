"""The import layers hold: no cycles, and models/guides/diagnostics stay below the commands.

Read from the source with ``ast`` (module-level and function-level imports alike); a package's
``__init__`` re-exporting its own submodules is not a dependency of those submodules.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Source folder -> the package name it ships as.
PACKAGES = {"vmoer_ppl": "vmoer_ppl", "models": "vmoer_ppl.models", "guides": "vmoer_ppl.guides"}


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            out[name] = path
    return out


def imports(name: str, path: Path, known: dict) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    if path.name == "__init__.py":  # re-exports of its own children
        found = {d for d in found if not d.startswith(name + ".")}
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    g = graph()
    assert "vmoer_ppl.routing" in g["vmoer_ppl.models.base"]
    assert "vmoer_ppl.bayesianize" in g["vmoer_ppl.pretrained"]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_models_guides_and_diagnostics_stay_below_the_commands():
    below = ("vmoer_ppl.models", "vmoer_ppl.guides", "vmoer_ppl.diagnostics")
    above = ("vmoer_ppl.integrations", "vmoer_ppl.pipeline", "vmoer_ppl.cli")
    bad = {
        (m, d)
        for m, deps in graph().items()
        if m.startswith(below)
        for d in deps
        if d.startswith(above)
    }
    assert bad == set()


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
