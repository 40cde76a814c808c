"""Dependency direction and import weight, read from the source so a wrong arrow fails the suite."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER_TO_PACKAGE = {
    "search": "archsearch",
    "spaces": "archsearch.spaces",
    "trainers": "archsearch.trainers",
    "storage": "archsearch.storage",
    "stats": "archsearch.stats",
    "dashboards": "archsearch.dashboards",
    "base": "archsearch.base",
}
# Which archsearch subpackages each folder may import (besides itself); every one may import archsearch.base.
ALLOWED = {
    "base": set(),
    "spaces": {"archsearch.base"},
    "storage": {"archsearch.base"},
    "trainers": {"archsearch.base"},
    "stats": {"archsearch.base", "archsearch.spaces", "archsearch.storage"},
    "dashboards": {"archsearch.base", "archsearch.storage", "archsearch.spaces", "archsearch.stats"},
    "search": {"*"},
}
SUBPACKAGES = {
    "archsearch.spaces",
    "archsearch.trainers",
    "archsearch.storage",
    "archsearch.stats",
    "archsearch.dashboards",
    "archsearch.base",
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _owner(module: str) -> str | None:
    """The archsearch package a module name belongs to ('archsearch' for the root package)."""
    for package in SUBPACKAGES:
        if module == package or module.startswith(package + "."):
            return package
    if module == "archsearch" or module.startswith("archsearch."):
        return "archsearch"
    return None


@pytest.mark.parametrize("folder", sorted(FOLDER_TO_PACKAGE))
def test_layout_torch_only_in_trainers(folder: str) -> None:
    """Check that torch is imported by trainers/ alone."""
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in _sources(folder)
        for name in _imports(path)
        if folder != "trainers" and (name == "torch" or name.startswith("torch."))
    ]
    assert offenders == []


@pytest.mark.parametrize("folder", sorted(FOLDER_TO_PACKAGE))
def test_layout_dependency_direction(folder: str) -> None:
    """Check that spaces/, storage/, trainers/ import only the error base of ours, stats/ also spaces/ and storage/, dashboards/ those and stats/."""
    own = FOLDER_TO_PACKAGE[folder]
    allowed = ALLOWED[folder]
    offenders = []
    for path in _sources(folder):
        for name in _imports(path):
            owner = _owner(name)
            if owner is None or owner == own or "*" in allowed or owner in allowed:
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_layout_no_bare_folder_imports() -> None:
    """Check that code and tests import through the archsearch namespace, never as search/storage/..."""
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for folder in [*FOLDER_TO_PACKAGE, "tests", "benchmarks"]
        for path in _sources(folder)
        for name in _imports(path)
        if name.split(".")[0] in FOLDER_TO_PACKAGE
    ]
    assert offenders == []


def _module_names() -> dict[str, Path]:
    """Every archsearch module by its dotted name (a package by its own name, from its __init__.py)."""
    found = {}
    for folder, package in FOLDER_TO_PACKAGE.items():
        for path in _sources(folder):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _package_of(module: str, modules: dict[str, Path]) -> str:
    """The innermost package holding `module`: archsearch.pool for archsearch.pool._worker."""
    if modules[module].name == "__init__.py":
        return module
    return module.rsplit(".", 1)[0]


def _module_imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The archsearch modules `module` imports, at the top or inside functions; `if TYPE_CHECKING:` blocks aside.

    `from package import name` counts as an import of the submodule `package.name` when there is one, else
    of the package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    targets = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
            targets |= subs if len(subs) == len(node.names) else subs | {node.module}
    return {t for t in targets if t in modules and t != module}


def _import_graph() -> tuple[dict[str, Path], dict[str, set[str]]]:
    modules = _module_names()
    return modules, {name: _module_imports(name, path, modules) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan): each one is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_layout_has_no_import_cycle() -> None:
    """Check that no archsearch modules import each other in a cycle, counting imports inside functions."""
    _, edges = _import_graph()
    assert _cycles(edges) == []


def test_layout_no_private_imports_across_packages() -> None:
    """Check that no module imports a `_private` module of another package (subpackages of search/ included)."""
    modules, edges = _import_graph()
    offenders = []
    for name, targets in edges.items():
        for target in targets:
            owner = _package_of(target, modules)
            private = any(part.startswith("_") for part in target[len(owner) :].split("."))
            if private and owner != _package_of(name, modules):
                offenders.append(f"{name} imports {target}")
    assert offenders == []


def test_layout_cycle_finder_sees_a_cycle() -> None:
    """Check that the cycle finder reports a three-module cycle and nothing for a chain."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []


def test_layout_checker_catches_a_wrong_arrow(tmp_path: Path) -> None:
    """Check that the import reader sees both `import x` and `from x import y` forms."""
    source = tmp_path / "bad.py"
    source.write_text("import torch.nn\nfrom archsearch.storage import mask_url\n", encoding="utf-8")
    names = _imports(source)
    assert names == ["torch.nn", "archsearch.storage"]
    assert _owner("archsearch.storage._url") == "archsearch.storage"
    assert _owner("archsearch.config") == "archsearch"


@pytest.mark.timeout(120)
def test_layout_import_archsearch_is_light() -> None:
    """Check that `import archsearch` and its config, CLI, export and statistics modules load neither torch nor plotly."""
    code = (
        "import sys, archsearch, archsearch.cli, archsearch.config, archsearch.dashboards, archsearch.stats,"
        " archsearch.sensitivity, archsearch.export;"
        "heavy = [m for m in ('torch', 'plotly') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
