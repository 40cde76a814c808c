"""Tests of the archsearch command line: each command, its output and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import archsearch
from archsearch.cli import main

from .conftest import FinishedSearch

# Real searches, worker processes or a browser: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    """Check that --version prints the package version."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert archsearch.__version__ in capsys.readouterr().out


def test_cli_datasets_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    """Check that `archsearch datasets` lists every built-in dataset."""
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "breast_cancer", "wine", "diabetes", "teacher"):
        assert name in out
    # The default recipe and budget, read from the config classes (so they cannot drift from the code).
    assert "epochs = 100, patience = 20" in out and 'lr_schedule = ["constant", "cosine"]' in out
    assert "recipe_baseline = true" in out and 'scaling = "standard"' in out
    assert "[export] greedy_ensemble = true, ensemble_seeds = 1" in out


@pytest.mark.timeout(300)
def test_cli_search_prints_best_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that `archsearch search` runs a config and prints the best trial and the linear baseline."""
    config = tmp_path / "s.toml"
    config.write_text(
        f'[study]\nname = "cli"\nstorage = "sqlite:///{tmp_path}/c.db"\nn_trials = 3\n'
        '[data]\ndataset = "wine"\n[space]\nlayers = [0, 1]\n[train]\nepochs = 3\n',
        encoding="utf-8",
    )
    assert main(["search", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Study 'cli': " in out and "Best trial" in out
    assert main(["search", str(config), "--n-trials", "4"]) == 0
    assert "4/4 trials" in capsys.readouterr().err


def test_cli_search_bad_config_exits_2_with_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that a config error is one line on stderr and exit code 2, not a traceback."""
    config = tmp_path / "bad.toml"
    config.write_text("[space]\nlayers = [2, 1]\n", encoding="utf-8")
    assert main(["search", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archsearch: error: ") and "'layers' parameter of [space]" in err


@pytest.mark.parametrize(
    ("study", "data", "flags", "message"),
    [
        ("n_trials = 0\n", "", [], "The 'n_trials' parameter of [study] must be an int in the range [1, 1,000,000]"),
        ("", "", ["--n-trials", "0"], "The 'n_trials' parameter of [study] must be an int in the range [1, 1,000,000]"),
        ("", 'path = "rows.csv"\ntarget = "purchase"\n', [], "did you mean 'Purchase'?"),
        ("", 'path = "gone.csv"\n', [], "does not exist; check `path` in [data]."),
    ],
)
def test_cli_search_refuses_before_creating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], study: str, data: str, flags: list[str], message: str
) -> None:
    """Check that n_trials = 0, a target in the wrong case and a missing file exit 2 with one line naming the
    field, and leave no database behind."""
    (tmp_path / "rows.csv").write_text("a,Purchase\n1,No\n2,Yes\n3,No\n4,Yes\n5,No\n6,Yes\n", encoding="utf-8")
    config = tmp_path / "s.toml"
    config.write_text(
        f'[study]\nname = "x"\nstorage = "sqlite:///{tmp_path}/x.db"\n{study}[data]\n{data}', encoding="utf-8"
    )
    assert main(["search", str(config), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archsearch: error: ") and message in err and err.count("\n") == 1
    for internal in ("DataSpec", "MLPSpace", "StudyConfig", "TrainConfig"):
        assert internal not in err
    assert not (tmp_path / "x.db").exists()


def test_cli_masks_passwords_in_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Check that a storage password never reaches the terminal."""
    code = main(
        [
            "export",
            "--storage",
            "postgresql+psycopg://me:topsecret@127.0.0.1:1/x",
            "--study",
            "s",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "topsecret" not in err and "me:***@" in err


@pytest.mark.timeout(300)
def test_cli_export_writes_the_folder(
    digits_search: FinishedSearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check that `archsearch export --no-greedy-ensemble` writes the model folder for the best trial and says
    which rows it saw, and that the default export (a greedy ensemble here) says which rows each member saw."""
    argv = ["export", "--storage", digits_search.url, "--study", "digits", "--out", str(tmp_path / "m")]
    assert main([*argv, "--no-greedy-ensemble"]) == 0
    assert (tmp_path / "m" / "model.pt2").exists()
    out = capsys.readouterr().out
    assert (
        out.startswith(f"Exported trial {digits_search.exported_trial.number} to ")
        and "(train + validation, refit)" in out
    )
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("Exported an ensemble of ") and " trials chosen greedily to " in out
    assert f"train + validation (trial {digits_search.exported_trial.number}, refit); train (the other " in out


@pytest.mark.timeout(120)
def test_cli_console_script_runs() -> None:
    """Check that the installed `archsearch` entry point starts (python -m archsearch.cli as fallback)."""
    run = subprocess.run(
        [sys.executable, "-m", "archsearch.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and "search" in run.stdout and "export" in run.stdout


def test_a_linear_trial_fitted_by_lbfgs_is_described_without_its_unused_lr_and_batch() -> None:
    """Check the summary line of an L-BFGS linear trial names the solver and its L2, not the sampled lr."""
    import optuna

    from archsearch.cli import _describe_trial
    from archsearch.storage import keys

    study = optuna.create_study(direction="maximize")
    study.set_user_attr(keys.METRIC, "accuracy")
    attrs = {"widths": [], "dropouts": [], "n_params": 650, keys.SOLVER: "lbfgs"}
    params = {"lr": 0.01, "optimizer": "adamw", "batch_size": 64, "weight_decay": 8e-4}
    dists = {name: optuna.distributions.CategoricalDistribution([value]) for name, value in params.items()}
    trial = optuna.trial.create_trial(value=0.97, params=params, distributions=dists, user_attrs=attrs)
    assert _describe_trial(study, trial).endswith(
        "0 hidden layers (linear model); 650 parameters; fitted by L-BFGS, L2 0.0008"
    )
    del attrs[keys.SOLVER]
    plain = optuna.trial.create_trial(value=0.97, params=params, distributions=dists, user_attrs=attrs)
    assert _describe_trial(study, plain).endswith("650 parameters; lr 0.01, adamw, batch 64")
