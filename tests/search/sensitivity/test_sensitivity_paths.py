"""Tests that `archsearch sensitivity` writes its default outputs inside the working folder, whatever the study's name."""

from __future__ import annotations

from pathlib import Path

import pytest

import archsearch.sensitivity._run
from archsearch.cli import main

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


class _Written:
    def write_html(self, path: str | Path) -> Path:
        Path(path).write_text("<html></html>", encoding="utf-8")
        return Path(path)


class _Result:
    companion_study = "c"

    def table(self) -> str:
        return "table"

    def to_json(self) -> str:
        return "{}"

    def report(self) -> _Written:
        return _Written()


@pytest.mark.parametrize("name", ["../x/evil", "/abs/evil", "..", "a/../../b"])
def test_sensitivity_default_outputs_stay_in_the_working_folder(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that a study name with path separators or '..' cannot place the JSON or HTML outside the folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(archsearch.sensitivity._run, "run_sensitivity", lambda *args, **kwargs: _Result())
    assert main(["sensitivity", "--storage", "sqlite:///s.db", "--study", name]) == 0
    written = sorted(p.name for p in work.iterdir())
    assert len(written) == 2 and all(p.endswith(("-sensitivity.json", "-sensitivity.html")) for p in written)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == written


def test_sensitivity_explicit_out_paths_may_write_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check that --out-json and --out-html are honoured as given: the one way to write outside the folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(archsearch.sensitivity._run, "run_sensitivity", lambda *args, **kwargs: _Result())
    (tmp_path / "elsewhere").mkdir()
    out_json, out_html = tmp_path / "elsewhere" / "r.json", tmp_path / "elsewhere" / "r.html"
    assert (
        main(
            [
                "sensitivity",
                "--storage",
                "sqlite:///s.db",
                "--study",
                "../evil",
                "--out-json",
                str(out_json),
                "--out-html",
                str(out_html),
            ]
        )
        == 0
    )
    assert out_json.read_text(encoding="utf-8") == "{}" and out_html.exists()
