"""The examples in docstrings run: each module's `>>>` lines are executed as doctests."""

from __future__ import annotations

import doctest
import importlib
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
}


def _modules_with_examples() -> list[str]:
    names = []
    for folder, package in FOLDER_TO_PACKAGE.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if ">>> " not in path.read_text(encoding="utf-8"):
                continue
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join([package, *parts]))
    return names


@pytest.mark.timeout(120)
@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that every docstring example of the module runs and prints what it shows.

    Examples that need a stored study or a long run are marked `# doctest: +SKIP` in place; everything
    else runs here, in a scratch folder, so an example that drifts from the code fails the suite.
    """
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, module_name):
        # Only the module's own examples: a name it re-exports is tested in the module that defines it.
        if test.filename and Path(test.filename).resolve() == Path(module.__file__).resolve():
            runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)[-4000:]
