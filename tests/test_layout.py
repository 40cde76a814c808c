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
    "dashboards": "archsearch.dashboards",
}
# Which archsearch subpackages each folder may import (besides itself).
ALLOWED = {
    "spaces": set(),
    "storage": set(),
    "trainers": set(),
    "dashboards": {"archsearch.storage", "archsearch.spaces"},
    "search": {"*"},
}
SUBPACKAGES = {"archsearch.spaces", "archsearch.trainers", "archsearch.storage", "archsearch.dashboards"}


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
    """Check that spaces/, storage/, trainers/ import no other archsearch package and dashboards/ only storage/spaces."""
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
    """Check that `import archsearch` and its config/CLI modules load neither torch nor plotly."""
    code = (
        "import sys, archsearch, archsearch.cli, archsearch.config, archsearch.dashboards;"
        "heavy = [m for m in ('torch', 'plotly') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
