"""The `archsearch` command: a thin layer over the Python API (each command calls one public function)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from typing import Any, Sequence

import archsearch
from archsearch import explanations, sensitivity
from archsearch.base import ArchsearchError
from archsearch.storage_args import add_storage_arguments, resolve_storage

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _describe_trial(study, trial) -> str:
    from archsearch.storage import keys, quality_value

    attrs = trial.user_attrs
    metric = study.user_attrs.get(keys.METRIC, "value")
    widths = attrs.get("widths", [])
    layers = f"{len(widths)} hidden layer{'s' if len(widths) != 1 else ''}"
    dropouts = [round(d, 3) for d in attrs.get("dropouts", [])]
    shape = f" {widths}, dropout {dropouts}, {attrs.get('activation')}" if widths else " (linear model)"
    test = attrs.get(f"test_{metric}")
    test_text = f", test {metric} {test:.4f}" if test is not None else ""
    if attrs.get(keys.SOLVER) == "lbfgs":  # lr, optimizer and batch size were sampled but not used
        training = f"fitted by L-BFGS, L2 {trial.params.get('weight_decay', 0.0):.2g}"
    else:
        training = f"lr {trial.params.get('lr', 0):.2g}, {trial.params.get('optimizer')}, batch {trial.params.get('batch_size')}"
    return (
        f"trial {trial.number}: val {metric} {quality_value(trial):.4f}{test_text}; {layers}{shape}; "
        f"{attrs.get('n_params', 0):,} parameters; {training}"
    )


def _cmd_search(args: argparse.Namespace) -> int:
    from archsearch.config import load_config
    from archsearch.controller import run_search
    from archsearch.status import comparison_lines, counts_line, front_lines
    from archsearch.storage import best_quality_trial, mask_url, quality_trials

    config = load_config(args.config).replace(
        name=args.study, storage=args.storage, n_trials=args.n_trials, timeout=args.timeout
    )
    if args.engine is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, engine=args.engine))
    if not args.quiet:
        print(f"Study {config.study.name!r} in {mask_url(config.study.storage)}", file=sys.stderr)
    study = run_search(
        config,
        workers=args.workers,
        gpus=args.gpus,
        trials_per_gpu=args.trials_per_gpu,
        quiet=args.quiet,
        log_dir=args.log_dir,
    )
    print(counts_line(study))
    try:
        best = best_quality_trial(study)
    except ValueError:
        print("No trial completed.")
        return 1
    print("Best " + _describe_trial(study, best))
    # Depth has to beat the best linear model the search trained, not the first one.
    linear = [t for t in quality_trials(study) if t.params.get("n_layers") == 0]
    if linear:
        best_linear = linear[0]
        if best_linear.number != best.number:
            print("Best linear model " + _describe_trial(study, best_linear))
    for line in [*comparison_lines(study), *front_lines(study)]:
        print(line)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from archsearch.controller import join_study
    from archsearch.status import counts_line
    from archsearch.storage import mask_url

    if not args.quiet:
        print(f"Joining study {args.study!r} in {mask_url(args.storage)}", file=sys.stderr)
    study = join_study(
        args.storage,
        args.study,
        workers=args.workers,
        gpus=args.gpus,
        trials_per_gpu=args.trials_per_gpu,
        max_trials=args.n_trials,
        quiet=args.quiet,
        log_dir=args.log_dir,
    )
    print(counts_line(study))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from archsearch.status import check_top, study_status
    from archsearch.storage import make_storage

    check_top(args.top)
    print(study_status(make_storage(args.storage, must_exist=True), args.study, url=args.storage, top=args.top))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import optuna

    from archsearch.dashboards import ReportError, build_report
    from archsearch.storage import keys, make_storage, open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the importance step's scratch studies are no news
    study = open_study(make_storage(args.storage, must_exist=True), args.study, url=args.storage)
    if keys.CONFIG not in study.user_attrs:
        raise ReportError(
            f"Study {args.study!r} was not created by archsearch, so it has none of the sizes the report reads."
        )
    report = build_report(study, knee_tolerance=args.knee_tolerance)
    try:
        path = report.write_html(args.out)
    except OSError as e:
        raise ReportError(
            f"The '--out' parameter must be a writable file path. Got {args.out!r} instead ({e.strerror})."
        ) from e
    print(f"Report written to {path}")
    if not args.no_push:
        pushed = report.push_to_dashboard(study)
        print(f"Pushed {len(pushed)} figures and the summary note to optuna-dashboard (study {args.study!r}).")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from archsearch.dashboards import launch_dashboard

    launch_dashboard(args.storage, host=args.host, port=args.port, artifact_dir=args.artifacts)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from archsearch.export import describe_export, export_best

    if args.retrain:
        print(
            "archsearch: --retrain is deprecated: refitting on train + validation is now the default.", file=sys.stderr
        )
    with warnings.catch_warnings():
        # One line each (e.g. candidates of the greedy ensemble left out), not a warning's source location.
        warnings.showwarning = lambda message, *_: print(f"archsearch: warning: {message}", file=sys.stderr)
        out = export_best(
            args.storage,
            args.study,
            args.out,
            trial=args.trial,
            refit=args.refit,
            ensemble=args.ensemble,
            ensemble_seeds=args.ensemble_seeds,
            greedy_ensemble=args.greedy_ensemble,
            clamp=args.clamp,
            artifacts=args.artifacts,
            max_params=args.max_params,
            max_flops=args.max_flops,
            max_latency_ms=args.max_latency_ms,
        )
    print(describe_export(out))
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from archsearch.trainers.data import describe_datasets

    for row in describe_datasets():
        classes = f"{row['classes']} classes" if row.get("classes") else "regression"
        print(
            f"{row['name']:<14} {row['rows']:>6} rows x {row['features']:>3} features, {classes:<12} {row['description']}"
        )
    print("\nWhat a config that names none of them trains and exports with (README: Configuration):")
    for line in recipe_defaults():
        print(f"  {line}")
    return 0


def recipe_defaults() -> list[str]:
    """The default training recipe, budget and export, one line per section, from the config classes themselves.

    >>> recipe_defaults()[0]
    '[data] val_fraction = 0.2, test_fraction = 0.1, scaling = "standard"'
    """
    from archsearch.config import DEFAULT_TRIALS, DataSpec, ExportConfig, TrainConfig
    from archsearch.spaces import MLPSpace

    data, space, train, export = DataSpec(), MLPSpace(), TrainConfig(), ExportConfig()

    def toml(value: object) -> str:
        if isinstance(value, tuple):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        if isinstance(value, str):
            return f'"{value}"'
        return str(value).lower() if isinstance(value, bool) else str(value)

    def line(section: str, obj: object, names: tuple[str, ...]) -> str:
        return f"{section} " + ", ".join(f"{name} = {toml(getattr(obj, name))}" for name in names)

    return [
        line("[data]", data, ("val_fraction", "test_fraction", "scaling")),
        line("[space]", space, ("lr_schedule", "label_smoothing", "normalization", "embedding", "recipe_baseline")),
        line("[train]", train, ("epochs", "patience", "warmup", "engine"))
        + ("" if train.grad_clip else ", no grad_clip")
        + f"; [study] without n_trials: {DEFAULT_TRIALS} trials, or all the timeout allows",
        line("[export]", export, ("greedy_ensemble", "ensemble_seeds", "clamp"))
        + " (`archsearch export` ships the refit best plus the stored trials greedy selection adds; a regression"
        " model clamps to its training targets' range)",
    ]


def _gpu_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"--gpus must be comma-separated GPU indices such as 0,1. Got {text!r} instead."
        ) from e


def _add_worker_arguments(parser: argparse.ArgumentParser, *, workers_default: int | None) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=workers_default,
        help="worker processes (default: one per GPU, else one per CPU core)",
    )
    parser.add_argument("--gpus", type=_gpu_list, help="GPU indices to use, e.g. 0,1 (default: all visible GPUs)")
    parser.add_argument("--trials-per-gpu", type=int, default=1, help="workers sharing each GPU (default: 1)")
    parser.add_argument("--log-dir", help="folder of the per-worker logs (default: beside a SQLite file)")


def _add_budget_options(export: argparse.ArgumentParser) -> None:
    """`export --max-params/--max-flops/--max-latency-ms`: a budget on what ships, all members counted."""
    for option, kind, unit in (("--max-params", int, "parameters"), ("--max-flops", int, "FLOPs per row")):
        export.add_argument(option, type=kind, metavar="N", help=f"ship the best network(s) of at most N {unit} in all")
    export.add_argument(
        "--max-latency-ms", type=float, metavar="MS", help="ship the best network(s) of at most MS ms at batch 1 in all"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archsearch", description="Architecture and hyperparameter search for MLPs.")
    parser.add_argument("--version", action="version", version=f"archsearch {archsearch.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_search(commands)
    _add_worker(commands)
    _add_status(commands)
    _add_report(commands)
    _add_dashboard(commands)
    _add_export(commands)
    sensitivity.add_parser(commands)
    explanations.add_parser(commands)
    datasets = commands.add_parser("datasets", help="list the built-in datasets")
    datasets.set_defaults(handler=_cmd_datasets)
    return parser


def _add_search(commands: Any) -> None:
    """`archsearch search CONFIG`: run or resume a search."""
    search = commands.add_parser("search", help="run or resume a search from a TOML config")
    search.add_argument("config", help="path to the TOML config")
    search.add_argument("--study", help="study name (overrides [study] name)")
    add_storage_arguments(search, help="storage URL (overrides [study] storage)")
    search.set_defaults(storage_required=False)
    search.add_argument("--n-trials", type=int, help="total completed + pruned trials (overrides [study] n_trials)")
    search.add_argument(
        "--timeout",
        type=float,
        help="seconds for this run (overrides [study] timeout); with [study] reserve_refit (the default) the "
        "search ends early enough for `export` to refit its best trial within them",
    )
    # Checked by TrainConfig, like the file's value; importing the config here would slow every command's start.
    search.add_argument("--engine", help="auto, single or fused trainer (overrides [train] engine)")
    search.add_argument("--quiet", action="store_true", help="no progress output")
    _add_worker_arguments(search, workers_default=None)
    search.set_defaults(handler=_cmd_search)


def _add_worker(commands: Any) -> None:
    """`archsearch worker`: join an existing study from this machine."""
    worker = commands.add_parser("worker", help="join an existing study from this machine (URL and name are enough)")
    add_storage_arguments(worker, help="storage URL of the study, as this machine reaches it")
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--n-trials", type=int, help="stop each worker after this many trials of its own")
    worker.add_argument("--quiet", action="store_true", help="no progress output")
    _add_worker_arguments(worker, workers_default=None)
    worker.set_defaults(handler=_cmd_worker)


def _add_status(commands: Any) -> None:
    """`archsearch status`: counts, running trials and the best trial."""
    status = commands.add_parser("status", help="trial counts, running trials with heartbeat age, best trial")
    add_storage_arguments(status, help="storage URL")
    status.add_argument("--study", required=True, help="study name")
    status.add_argument(
        "--top", type=int, metavar="N", help="also list the N best trials: architecture, size, metrics, epochs, time"
    )
    status.set_defaults(handler=_cmd_status)


def _add_report(commands: Any) -> None:
    """`archsearch report`: the HTML report and the dashboard figures."""
    report = commands.add_parser("report", help="write the HTML report and push its figures to optuna-dashboard")
    add_storage_arguments(report, help="storage URL")
    report.add_argument("--study", required=True, help="study name")
    report.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    report.add_argument(
        "--knee-tolerance",
        type=float,
        help="metric distance from the best that still counts as 'as good' (default 0.005 = 0.5 points; for rmse "
        "0.005 x the target's standard deviation)",
    )
    report.add_argument(
        "--no-push", action="store_true", help="do not save the figures into the study for optuna-dashboard"
    )
    report.set_defaults(handler=_cmd_report)


def _add_dashboard(commands: Any) -> None:
    """`archsearch dashboard`: optuna-dashboard on the storage."""
    dashboard = commands.add_parser("dashboard", help="start optuna-dashboard on the storage, with the trained weights")
    add_storage_arguments(dashboard, help="storage URL")
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    dashboard.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    dashboard.add_argument("--artifacts", help="artifact folder (default: beside a SQLite file)")
    dashboard.set_defaults(handler=_cmd_dashboard)


def _add_export(commands: Any) -> None:
    """`archsearch export`: the best (or a given) trial as a model that loads without archsearch."""
    export = commands.add_parser("export", help="export the best (or a given) trial's network")
    add_storage_arguments(export, help="storage URL of the study")
    export.add_argument("--study", required=True, help="study name")
    export.add_argument(
        "--trial", type=int, help="trial number (default: the best trial; the smallest network among ties)"
    )
    export.add_argument("--out", required=True, help="output folder")
    refit = export.add_mutually_exclusive_group()
    refit.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        help="ship the weights the search trained (on the training split only)",
    )
    refit.add_argument(
        "--retrain", action="store_true", help="deprecated: refitting on train + validation is the default"
    )
    members = export.add_mutually_exclusive_group()
    members.add_argument(
        "--ensemble", type=int, metavar="K", help="ship the mean prediction of the K best trials as one program"
    )
    members.add_argument(
        "--ensemble-seeds",
        type=int,
        metavar="K",
        help="ship the mean prediction of K seeds of the chosen trial (default: the study's [export] ensemble_seeds, 1)",
    )
    export.add_argument(
        "--greedy-ensemble",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add stored trials to the best by greedy ensemble selection on the validation split, weighted, "
        "training nothing more (default: the study's [export] greedy_ensemble)",
    )
    export.add_argument(
        "--clamp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="regression: clamp predictions to the range of the targets the model trained on "
        "(default: the study's [export] clamp, true)",
    )
    export.add_argument("--artifacts", help="folder of the trials' weights, if not the study's default")
    _add_budget_options(export)
    export.set_defaults(handler=_cmd_export)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `archsearch` console script; returns the exit code."""
    from archsearch.storage import mask_url

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "storage_file"):
            args.storage = resolve_storage(args.storage, args.storage_file)
            if args.storage is None and args.storage_required:
                parser.error(f"{args.command} needs the storage URL: --storage, --storage-file, or $ARCHSEARCH_STORAGE")
        return args.handler(args)
    except KeyboardInterrupt:
        print("\narchsearch: interrupted; run the same command again to continue the study.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ArchsearchError, OSError) as e:
        # A situation the user can fix (a file the system refused is one too): one line, no traceback.
        print(f"archsearch: error: {mask_url(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:
        # Database and Optuna errors can repeat a connection URL; never let a password reach the terminal.
        from optuna.exceptions import OptunaError
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(e, (OptunaError, SQLAlchemyError)):
            raise
        print(
            f"archsearch: error: {type(e).__name__}: {mask_url(str(e).splitlines()[0] if str(e) else '')}",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
