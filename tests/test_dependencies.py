"""Every dependency is there for a reason the README gives, and the program's own imports need nothing that only
the development extras install (``httpx`` was once a dev dependency that ``bwc watch --server`` imports)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "audit", "config", "ingest", "storage")


def _declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    dev = [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    return runtime, dev


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_has_a_row_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Dependencies, and why each is there", 1)[1].split("\n## ", 1)[0]
    named = {_norm(n) for n in re.findall(r"`([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?`", table)}
    runtime, dev = _declared()
    missing = sorted(r.name for r in runtime + dev if _norm(r.name) not in named)
    assert not missing, f"README's dependency table has no row for {missing}"


def _closure(roots: list[Requirement]) -> set[str]:
    """The distributions that installing ``roots`` (no extras of ours) brings, as installed here."""
    seen: set[str] = set()
    todo = [(r.name, tuple(sorted(r.extras))) for r in roots]
    while todo:
        name, extras = todo.pop()
        key = _norm(name)
        if key in seen and not extras:
            continue
        seen.add(key)
        try:
            found = requires(name) or []
        except PackageNotFoundError:
            continue
        for line in found:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or ("",))):
                todo.append((req.name, tuple(sorted(req.extras))))
    return seen


def _third_party_imports() -> dict[str, str]:
    """Top-level modules the program's packages import, each with one file that imports it."""
    own = set(PACKAGES)
    found: dict[str, str] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in own and top not in sys.stdlib_module_names and top != "__future__":
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_the_program_imports_only_what_its_runtime_dependencies_install() -> None:
    runtime, _dev = _declared()
    installed = _closure(runtime)
    providers = packages_distributions()
    wrong = []
    for module, where in sorted(_third_party_imports().items()):
        dists = {_norm(d) for d in providers.get(module, [])}
        if not dists & installed:
            wrong.append(f"{module} (imported by {where}; provided by {sorted(dists) or 'nothing installed'})")
    assert not wrong, f"imported by the program but not installed by its runtime dependencies: {wrong}"
