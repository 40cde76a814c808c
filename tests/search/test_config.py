"""Tests of the TOML search config: defaults, overrides and every validation error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archsearch.config import MAX_TRIALS, ConfigError, SearchConfig, StudyConfig, TrainConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "search.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_config_example_round_trips() -> None:
    """Check that the shipped example loads and survives to_dict/from_dict unchanged."""
    config = load_config(EXAMPLE)
    assert config.study.name == "digits"
    assert config.space.layers == (0, 3)
    assert SearchConfig.from_dict(config.to_dict()) == config


def test_search_config_defaults() -> None:
    """Check the documented defaults: SQLite storage, TPE, median pruner, metric chosen by task."""
    config = SearchConfig()
    assert config.study.storage == "sqlite:///archsearch.db"
    assert (config.study.sampler, config.study.pruner) == ("tpe", "median")
    assert config.metric_for("classification") == "accuracy"
    assert config.metric_for("regression") == "rmse"


@pytest.mark.parametrize(
    ("study", "pruner"),
    [
        ({}, "median"),
        ({"pruner": "auto"}, "median"),
        ({"objectives": ["accuracy", "params"]}, "none"),
        ({"objectives": ["accuracy", "params"], "pruner": "median"}, "median"),
        ({"pruner": "hyperband"}, "hyperband"),
    ],
)
def test_the_default_pruner_is_median_for_one_objective_and_none_for_several(study: dict, pruner: str) -> None:
    """Check that "auto" is resolved at construction, so that the stored config names the pruner that ran."""
    config = SearchConfig.from_dict({"study": study, "data": {"dataset": "wine"}})
    assert config.study.pruner == pruner
    assert SearchConfig.from_dict(config.to_dict()).study.pruner == pruner


def test_search_config_data_seed_follows_study_seed() -> None:
    """Check that the split is seeded by [study] seed unless [data] sets its own."""
    assert SearchConfig.from_dict({"study": {"seed": 7}}).data.seed == 7
    assert SearchConfig.from_dict({"study": {"seed": 7}, "data": {"seed": 3}}).data.seed == 3


def test_load_config_resolves_data_path_next_to_the_file(tmp_path: Path) -> None:
    """Check that a relative data path is read relative to the config file, not the working folder."""
    path = _write(tmp_path, '[data]\npath = "rows.csv"\ntarget = "y"\n')
    assert load_config(path).data.path == str((tmp_path / "rows.csv").resolve())


def test_load_config_resolves_a_program_encoder_next_to_the_file(tmp_path: Path, monkeypatch) -> None:
    """Check that a relative program encoder path is read relative to the config file; a function name is kept."""
    (tmp_path / "encoder.pt2").write_bytes(b"")
    monkeypatch.chdir(tmp_path.parent)
    path = _write(tmp_path, '[data]\npath = "rows.npz"\nencoder = "encoder.pt2"\n')
    assert load_config(path).data.encoder == str((tmp_path / "encoder.pt2").resolve())
    path = _write(tmp_path, '[data]\npath = "rows.npz"\nencoder = "mypackage.encoders:embed"\n')
    assert load_config(path).data.encoder == "mypackage.encoders:embed"


def test_train_config_class_weight_auto() -> None:
    """Check that class_weight auto means balanced exactly when the metric is balanced accuracy."""
    train = TrainConfig()
    assert train.resolved_class_weight("balanced_accuracy") == "balanced"
    assert train.resolved_class_weight("accuracy") == "none"
    assert TrainConfig(class_weight="none").resolved_class_weight("balanced_accuracy") == "none"


def test_n_trials_left_out_is_30_without_a_timeout_and_unbounded_with_one() -> None:
    """Check that a timeout without n_trials spends the timeout, and that an explicit n_trials always wins."""
    assert SearchConfig().study.trial_total == 30
    assert SearchConfig().replace(timeout=120).study.trial_total == MAX_TRIALS
    assert SearchConfig().replace(timeout=0).study.trial_total == 30  # 0: no limit
    assert SearchConfig().replace(n_trials=7, timeout=120).study.trial_total == 7
    stored = SearchConfig.from_dict(SearchConfig().replace(timeout=120).to_dict())
    assert stored.study.n_trials is None and stored.study.trial_total == MAX_TRIALS


def test_search_config_replace_overrides_study_keys() -> None:
    """Check that CLI overrides change only the named [study] keys and ignore None."""
    config = SearchConfig().replace(name="x", n_trials=3, timeout=None)
    assert (config.study.name, config.study.n_trials, config.study.timeout) == ("x", 3, None)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[model]\nname = 'x'\n", r"Unknown section \[model\]; valid sections are: study, data, space, train"),
        ("[studdy]\nname = 'x'\n", r"Unknown section \[studdy\]; did you mean \[study\]\?$"),
        ("[study]\nnam = 'x'\n", r"Unknown key 'nam' in \[study\]; did you mean 'name'\?$"),
        ("[study]\nzzz = 'x'\n", r"Unknown key 'zzz' in \[study\]; valid keys are: name, storage"),
        ("[train]\nepoch = 3\n", r"Unknown key 'epoch' in \[train\]"),
        ("[space]\nwidht = [1, 2]\n", r"Unknown key 'widht' in \[space\]; did you mean 'width'\?$"),
        ("[sapce]\nwidth = [1, 2]\n", r"Unknown section \[sapce\]; did you mean \[space\]\?$"),
        ("[data]\ntaget = 'y'\n", r"Unknown key 'taget' in \[data\]"),
        ("[export]\nsedes = 3\n", r"Unknown key 'sedes' in \[export\]; valid keys are: ensemble_seeds"),
        (
            "[export]\nensemble_seeds = 0\n",
            r"The 'ensemble_seeds' parameter of \[export\] must be an int in the range \[1, 20\]\. Got 0 instead\.",
        ),
        (
            "[export]\ngreedy_ensemble = 'yes'\n",
            r"The 'greedy_ensemble' parameter of \[export\] must be true or false\. Got 'yes' instead\.",
        ),
        (
            "[export]\nclamp = 'no'\n",
            r"The 'clamp' parameter of \[export\] must be true or false\. Got 'no' instead\.",
        ),
        (
            "[export]\ngreedy_ensemble = true\nensemble_seeds = 3\n",
            r"The 'greedy_ensemble' parameter of \[export\] must be false when ensemble_seeds > 1 \(one kind of ensemble at a time\)\. Got True",
        ),
        ("[study]\nreserve_refit = 1\n", r"The 'reserve_refit' parameter of \[study\] must be true or false\. Got 1"),
        (
            "[study]\nn_trials = -1\n",
            r"The 'n_trials' parameter of \[study\] must be an int in the range \[1, 1,000,000\] \(leave it out for 30, or as many as the timeout allows\)\. Got -1 instead\.",
        ),
        (
            "[study]\nn_trials = 1e23\n",
            r"The 'n_trials' parameter of \[study\] must be an int in the range \[1, 1,000,000\] \(leave it out for 30, or as many as the timeout allows\)\. Got 1e\+23 instead\.",
        ),
        (
            "[study]\nn_trials = 1000001\n",
            r"The 'n_trials' parameter of \[study\] must be an int in the range \[1, 1,000,000\] \(leave it out for 30, or as many as the timeout allows\)\. Got 1000001 instead\.",
        ),
        (
            "[study]\nn_trials = true\n",
            r"The 'n_trials' parameter of \[study\] must be an int in the range \[1, 1,000,000\] \(leave it out for 30, or as many as the timeout allows\)\. Got True instead\.",
        ),
        (
            "[study]\npruner_startup_trials = -1\n",
            r"The 'pruner_startup_trials' parameter of \[study\] must be an int in the range \[0, 1,000,000\]\. Got -1 instead\.",
        ),
        (
            "[study]\nsampler = 'cmaes'\n",
            r"The 'sampler' parameter of \[study\] must be one of tpe, random, qmc, gp, nsga2\. Got 'cmaes'",
        ),
        (
            "[study]\npruner = 'early'\n",
            r"'pruner' parameter of \[study\] must be one of auto, median, percentile, successive_halving, hyperband, none",
        ),
        (
            "[study]\nmetric = 'f1'\n",
            r"The 'metric' parameter of \[study\] must be one of accuracy, balanced_accuracy, log_loss, rmse, r2\. Got 'f1'",
        ),
        ("[study]\ntimeout = -5\n", r"The 'timeout' parameter of \[study\] must be a number of seconds >= 0\. Got -5"),
        ("[study]\nstorage = 'oracle://x'\n", r"\[study\] The 'storage' parameter must use one of the backends"),
        (
            "[study]\nkeep_best_k = -1\n",
            r"'keep_best_k' parameter of \[study\] must be an int in the range \[0, 1,000,000\]",
        ),
        (
            "[train]\nepochs = 0\n",
            r"The 'epochs' parameter of \[train\] must be an int in the range \[1, 10,000\]\. Got 0 instead\.",
        ),
        (
            "[train]\ndevice = 'tpu'\n",
            r"The 'device' parameter of \[train\] must be one of 'auto', 'cpu', 'cuda' or 'cuda:N'\. Got 'tpu'",
        ),
        (
            "[train]\nclass_weight = 'heavy'\n",
            r"'class_weight' parameter of \[train\] must be one of auto, none, balanced",
        ),
        ("[train]\npatience = 0\n", r"The 'patience' parameter of \[train\] must be an int in the range \[1, 10,000\]"),
        ("[space]\nlayers = [3, 1]\n", r"The 'layers' parameter of \[space\]"),
        ("[space]\nwidth = [0, 8]\n", r"The 'width' parameter of \[space\]"),
        ("[space]\ndropout = [0.0, 1.0]\n", r"The 'dropout' parameter of \[space\]"),
        ("[space]\nactivation = ['relu', 'swish']\n", r"The 'activation' parameter of \[space\]"),
        ("[space]\noptimizer = []\n", r"The 'optimizer' parameter of \[space\]"),
        ("[data]\nval_fraction = 1.2\n", r"The 'val_fraction' parameter of \[data\]"),
        (
            "[data]\ndataset = 'teacher'\n[data.teacher]\nrows = 0\n",
            r"The 'rows' parameter of \[data.teacher\] must be an int in the range \[1, 1,000,000\]\. Got 0 instead\.",
        ),
        (
            "[study]\nn_trials = 0\n",
            r"The 'n_trials' parameter of \[study\] must be an int in the range \[1, 1,000,000\] .*Got 0 instead\.",
        ),
        ("[data]\ndataset = 'mnist'\n", r"mnist"),
        (
            "[train]\nengine = 'turbo'\n",
            r"The 'engine' parameter of \[train\] must be one of auto, single, fused\. Got 'turbo' instead\.",
        ),
        (
            "[train]\nlinear_solver = 'newton'\n",
            r"The 'linear_solver' parameter of \[train\] must be one of lbfgs, optimizer\. Got 'newton' instead\.",
        ),
        (
            "[train]\nslots = 0\n",
            r"The 'slots' parameter of \[train\] must be an int in the range \[1, 1,024\]\. Got 0",
        ),
        ("study = 3\n", r"\[study\] must be a table of keys\. Got 3 instead\."),
        (
            '[study]\nname = "a\\nb"\n',
            r"The 'name' parameter of \[study\] must be a non-empty string of at most 500 printable characters\. Got 'a\\nb'",
        ),
    ],
)
def test_load_config_rejects_bad_values(tmp_path: Path, toml: str, message: str) -> None:
    """Check that each bad config value gets an error naming the key, the rule and the value."""
    with pytest.raises(ConfigError, match=message) as error:
        load_config(_write(tmp_path, toml))
    # The user wrote sections and keys: the message names those, never the classes that hold them.
    assert not re.search(r"MLPSpace|DataSpec|TeacherSpec|StudyConfig|TrainConfig|ExportConfig", str(error.value))


def test_load_config_rejects_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    """Check that unreadable or malformed files are errors naming the file."""
    with pytest.raises(ConfigError, match=r"Cannot read the config file .*missing\.toml"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"is not valid TOML"):
        load_config(_write(tmp_path, "[study\nname = 'x'\n"))


def test_search_config_metric_must_fit_the_task() -> None:
    """Check that a regression metric on a classification task is refused with the allowed metrics."""
    config = SearchConfig(study=StudyConfig(metric="rmse"))
    with pytest.raises(
        ConfigError,
        match=r"must be one of accuracy, balanced_accuracy, log_loss for a classification task\. Got 'rmse'",
    ):
        config.metric_for("classification")


def test_load_config_names_the_file_that_is_not_utf8(tmp_path: Path) -> None:
    """Check that a UTF-16 config is one error that names the file and the encoding to use."""
    path = tmp_path / "wide.toml"
    path.write_text("[study]\nname = 'x'\n", encoding="utf-16")
    with pytest.raises(
        ConfigError, match=r"The config file '.*wide\.toml' is not UTF-8 text \(byte 0 cannot be decoded\)"
    ):
        load_config(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_load_config_rejects_an_empty_file(tmp_path: Path, text: str) -> None:
    """Check that an empty config is an error, not a silent default search."""
    with pytest.raises(
        ConfigError, match=r"The config file '.*search\.toml' is empty; it must set at least one of the sections"
    ):
        load_config(_write(tmp_path, text))


def test_load_config_says_a_directory_is_a_directory(tmp_path: Path) -> None:
    """Check that a directory given as the config is named as a directory."""
    (tmp_path / "x.toml").mkdir()
    with pytest.raises(
        ConfigError, match=r"The config file '.*x\.toml' is a directory; pass the path of a TOML file\."
    ):
        load_config(tmp_path / "x.toml")


@pytest.mark.parametrize("value", ["-1", "1e9", "'soon'"])
def test_load_config_rejects_bad_db_retry_seconds(tmp_path: Path, value: str) -> None:
    """Check that [study] db_retry_seconds outside [0, 86400] seconds is an error naming the rule and value."""
    with pytest.raises(
        ConfigError,
        match=r"The 'db_retry_seconds' parameter of \[study\] must be a number of seconds in the range \[0, 86400\]\. Got",
    ):
        load_config(_write(tmp_path, f"[study]\ndb_retry_seconds = {value}\n"))


def test_db_retry_seconds_defaults_to_the_storage_default() -> None:
    """Check that the config's default outage limit is the storage's, defined once."""
    from archsearch.storage import DB_RETRY_SECONDS

    assert SearchConfig().study.db_retry_seconds == DB_RETRY_SECONDS == 120


def test_greedy_ensemble_is_the_default_unless_seeds_are_asked_for() -> None:
    """Check that [export] greedy_ensemble defaults to true, that ensemble_seeds > 1 alone turns it off (a stored
    config from before the key existed still loads), and that both set to ensembles is refused."""
    assert SearchConfig.from_dict({}).export.greedy_ensemble is True
    seeds = SearchConfig.from_dict({"export": {"ensemble_seeds": 3}}).export
    assert (seeds.ensemble_seeds, seeds.greedy_ensemble) == (3, False)
    assert SearchConfig.from_stored({"export": {"ensemble_seeds": 2}}).export.greedy_ensemble is False
    with pytest.raises(
        ConfigError, match=r"The 'greedy_ensemble' parameter of \[export\] must be false when ensemble_seeds > 1"
    ):
        SearchConfig.from_dict({"export": {"ensemble_seeds": 3, "greedy_ensemble": True}})


HUGE = 9223372036854775807  # the largest TOML integer


@pytest.mark.parametrize(
    ("section", "key", "rule"),
    [
        ("train", "epochs", r"an int in the range \[1, 10,000\]"),
        ("train", "patience", r"an int in the range \[1, 10,000\] \(set it to `epochs` to train every epoch\)"),
        ("train", "slots", r"an int in the range \[1, 1,024\]"),
        ("train", "num_threads", r"an int in the range \[1, 1,024\]"),
        ("study", "seed", r"an int in the range \[0, 4,294,967,295\]"),
        ("study", "pruner_startup_trials", r"an int in the range \[0, 1,000,000\]"),
        ("study", "n_startup_trials", r"an int in the range \[0, 1,000,000\]"),
        ("study", "keep_best_k", r"an int in the range \[0, 1,000,000\] \(0 keeps every trial's weights\)"),
        ("study", "max_consecutive_failures", r"an int in the range \[1, 1,000,000\]"),
        ("study", "max_retry", r"an int in the range \[0, 100\]"),
        ("study", "heartbeat_interval", r"an int in the range \[1, 3,600\] \(seconds\)"),
        ("study", "grace_period", r"an int in the range \(heartbeat_interval = 10, 86,400\] \(seconds\)"),
        ("space", "batch_size", r"a non-empty list of distinct ints in the range \[1, 1,048,576\]"),
        ("space", "embedding_dim", r"a non-empty list of distinct ints in the range \[1, 1,024\]"),
        ("data.teacher", "rows", r"an int in the range \[1, 1,000,000\]"),
        ("data.teacher", "features", r"an int in the range \[1, 10,000\]"),
        ("data.teacher", "classes", r"an int in the range \[2, 1,000\]"),
        ("data.teacher", "widths", r"a sequence of ints in the range \[1, 65,536\]"),
    ],
)
def test_load_config_bounds_every_count(tmp_path: Path, section: str, key: str, rule: str) -> None:
    """Check that every count of the config has an upper bound, and that the largest TOML integer is refused with
    an error naming the key, its range and the value (epochs = 2**63 - 1 used to run, with a warm-up as long as
    the whole search)."""
    value = f"[{HUGE}]" if key in ("batch_size", "embedding_dim", "widths") else str(HUGE)
    text = f"[{section}]\n{key} = {value}\n"
    if section == "data.teacher":
        text = f"[data]\ndataset = 'teacher'\n[{section}]\n{key} = {value}\n"
    with pytest.raises(ValueError, match=rf"The '{key}' parameter of .* must be {rule}\. Got .*{HUGE}.* instead\."):
        load_config(_write(tmp_path, text))


def test_linear_solver_is_lbfgs_for_new_studies_and_optimizer_for_studies_stored_before_it():
    assert SearchConfig().train.linear_solver == "lbfgs"
    stored = SearchConfig().to_dict()
    del stored["train"]["linear_solver"]
    assert SearchConfig.from_stored(stored).train.linear_solver == "optimizer"
