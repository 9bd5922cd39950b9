"""Print the part of a lock file that running the library needs: no test, lint or docs tools.

Usage: ``python requirements/runtime.py requirements/lock.txt pyproject.toml > runtime.txt``.
The packages ``[project] dependencies`` and ``[build-system] requires`` of pyproject.toml name,
pip, and every locked package one of those needs (read from pip-compile's ``# via`` lines), with
the lock's versions and hashes: ``make demo`` installs this, ``make test`` the whole lock. The
versions still live in the one lock file; this only chooses which of its lines to install.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: no TOML reader in the standard library
    tomllib = None

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
VIA = re.compile(r"^\s+#\s+(?:via\s+)?(?!via\s*$)([A-Za-z0-9][A-Za-z0-9._-]*)\s*$")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(lock: str) -> dict[str, dict]:
    """``{name: {"lines": [pin and hash lines], "via": {parents}}}`` of a pip-compile lock."""
    out: dict[str, dict] = {}
    entry: dict | None = None
    for line in lock.splitlines():
        pin = PIN.match(line)
        if pin:
            entry = out.setdefault(canonical(pin[1]), {"lines": [line], "via": set()})
        elif entry is not None and line.strip().startswith("--hash"):
            entry["lines"].append(line)
        elif entry is not None and (via := VIA.match(line)):
            entry["via"].add(canonical(via[1]))
        elif not line.startswith(" "):
            entry = None  # a blank line or a top-level comment ends the entry
    return out


def roots(pyproject: str) -> set[str]:
    """The names pyproject.toml's runtime dependencies and build requirements give, and pip."""
    meta = tomllib.loads(pyproject)
    reqs = meta["project"].get("dependencies", []) + meta["build-system"].get("requires", [])
    names = {canonical(m[1]) for r in reqs if (m := NAME.match(r))}
    return names | {"pip"}


def closure(locked: dict[str, dict], start: set[str]) -> set[str]:
    """``start`` and every locked package that one already in the set needs (a fixpoint)."""
    missing = start - set(locked)
    if missing:
        raise SystemExit(f"runtime.py: {sorted(missing)} are not in the lock; run `make lock`")
    need, grew = set(start), True
    while grew:
        new = {n for n, e in locked.items() if n not in need and e["via"] & need}
        need |= new
        grew = bool(new)
    return need


def main(lock: str, pyproject: str) -> None:
    """Write the runtime lines of ``lock`` to stdout, in the lock's order."""
    locked = entries(Path(lock).read_text())
    if tomllib is None:  # cannot read pyproject.toml: the whole lock, as `make test` installs
        need = set(locked)
    else:
        need = closure(locked, roots(Path(pyproject).read_text()))
    for name, entry in locked.items():
        if name in need:
            print("\n".join(entry["lines"]))


if __name__ == "__main__":
    main(*sys.argv[1:3])
