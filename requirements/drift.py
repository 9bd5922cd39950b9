"""Print the installed packages whose versions differ from a lock file (the drift canary).

Usage: ``python requirements/drift.py requirements/lock.txt`` inside the environment to compare.
Exits 0 either way: the differences are information, the test suite that follows is the verdict.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    """``{name: version}`` of the lock's pins."""
    found = (PIN.match(line) for line in path.read_text().splitlines())
    return {canonical(m[1]): m[2] for m in found if m}


def installed() -> dict[str, str]:
    """``{name: version}`` of this environment."""
    return {canonical(d.metadata["Name"]): d.version for d in distributions()}


def main(lock: str) -> None:
    """Print one line per locked package whose installed version differs (or is missing)."""
    want, have = locked(Path(lock)), installed()
    rows = [(n, want[n], have.get(n, "missing")) for n in sorted(want) if want[n] != have.get(n)]
    print(f"drift against {lock}: {len(rows)} of {len(want)} locked packages differ")
    for name, old, new in rows:
        print(f"  {name:32s} lock {old:16s} here {new}")


if __name__ == "__main__":
    main(*sys.argv[1:])
