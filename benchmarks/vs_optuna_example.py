"""archsearch against Optuna's own PyTorch example, same space, budget, sampler, pruner and data split.

The reference is written the way optuna-examples/pytorch/pytorch_simple.py is: one process,
`study.optimize`, a `DataLoader` over a `TensorDataset`, a model from `n_layers`, `n_units_l{i}` and
`dropout_l{i}`, Adam with a sampled learning rate, and the validation accuracy reported each epoch to a
MedianPruner. archsearch runs the same search with `run_search(config, workers=None)` (one worker
process per core), once with the single engine and once with `[train] engine = "fused"` (`--slots`
trials per worker). Every (dataset, seed) runs both, one after the other in fresh processes, and the
order alternates between seeds so that the machine's drift hits both.

What the reference adds to the example, so that both measure the same things: it keeps the best
epoch's weights and returns the best epoch's accuracy (archsearch's objective), it measures test
accuracy with those weights, and it counts epochs from 1 as archsearch does. Sampler and pruner are
configured as archsearch configures them (`TPESampler(seed, multivariate=True, group=True,
n_startup_trials=10)`, `MedianPruner(n_startup_trials=5, n_warmup_steps=min(3, epochs - 1))`). The
reference runs with torch's default thread count, as the example does; `--reference-threads 1` gives
the strongest one-process reference on a small shared machine.

Wall time and "time to target" start when the child process starts, before torch, optuna or archsearch
are imported, so both pay their imports (archsearch's workers import torch in parallel).

Usage:
    python benchmarks/vs_optuna_example.py                 # digits + teacher (50,000 rows), 3 seeds
    python benchmarks/vs_optuna_example.py --quick         # 1-2 minutes: 1 seed, small budgets, 10,000 teacher rows
    python benchmarks/vs_optuna_example.py --datasets teacher --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import ChildFailed, emit, machine_summary, markdown_table, mean_or_none, print_machine, run_child

BATCHSIZE = 128
SPACE = {  # the reference's ranges, and archsearch's MLPSpace built from the same numbers below
    "layers": (1, 3),
    "width": (4, 128),
    "dropout": (0.2, 0.5),
    "lr": (1e-5, 1e-1),
}
# archsearch samples dropout on a grid; 0.001 makes it continuous for any practical purpose.
DROPOUT_STEP = 0.001


@dataclass(frozen=True)
class Budget:
    trials: int
    epochs: int
    target: float  # validation accuracy for "time to target"
    teacher_rows: int = 50_000


BUDGETS = {
    "digits": Budget(trials=40, epochs=20, target=0.97),
    "teacher": Budget(trials=20, epochs=10, target=0.65),
}
QUICK_BUDGETS = {
    "digits": Budget(trials=20, epochs=10, target=0.97),
    "teacher": Budget(trials=10, epochs=5, target=0.60, teacher_rows=10_000),
}
CONTENDERS = ("reference", "archsearch", "archsearch-fused")


def data_spec(dataset: str, teacher_rows: int):
    from archsearch.trainers.data import DataSpec, TeacherSpec

    if dataset == "teacher":
        return DataSpec(dataset="teacher", seed=0, teacher=TeacherSpec(rows=teacher_rows, features=64, classes=10))
    return DataSpec(dataset=dataset, seed=0)


def _summarize(study, started: datetime.datetime, wall: float, target: float) -> dict[str, Any]:
    """Trials finished, when the validation accuracy first reached `target`, and the best trial's accuracies."""
    from optuna.trial import TrialState

    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    reached = [
        t.datetime_complete for t in finished if t.intermediate_values and max(t.intermediate_values.values()) >= target
    ]
    best = study.best_trial
    return {
        "wall_s": wall,
        "finished": len(finished),
        "pruned": sum(t.state == TrialState.PRUNED for t in finished),
        "epochs_trained": sum(len(t.intermediate_values) for t in finished),
        "time_to_target_s": (min(reached) - started).total_seconds() if reached else None,
        "best_val": best.value,
        "best_test": best.user_attrs["test_accuracy"],
        "devices": sorted({str(t.user_attrs.get("device", "")) for t in finished}),
    }


def run_reference(args: argparse.Namespace, started: datetime.datetime, clock: float) -> dict[str, Any]:
    """Optuna's PyTorch example on archsearch's split of the data (in-memory storage, one process)."""
    import optuna
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.utils.data import DataLoader, TensorDataset

    from archsearch.trainers.data import load_data

    DEVICE = torch.device(args.device)
    EPOCHS = args.epochs
    torch.manual_seed(args.seed)
    if args.reference_threads:
        torch.set_num_threads(args.reference_threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(data_spec(args.dataset, args.teacher_rows))
    CLASSES = data.n_outputs

    def loader(x, y, shuffle: bool) -> DataLoader:
        return DataLoader(
            TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=BATCHSIZE, shuffle=shuffle
        )

    train_loader = loader(data.x_train, data.y_train, True)
    valid_loader = loader(data.x_val, data.y_val, False)
    test_loader = loader(data.x_test, data.y_test, False)

    def define_model(trial: optuna.Trial) -> nn.Sequential:
        n_layers = trial.suggest_int("n_layers", *SPACE["layers"])
        layers = []
        in_features = data.n_features
        for i in range(n_layers):
            out_features = trial.suggest_int(f"n_units_l{i}", *SPACE["width"], log=True)
            layers.append(nn.Linear(in_features, out_features))
            layers.append(nn.ReLU())
            p = trial.suggest_float(f"dropout_l{i}", *SPACE["dropout"])
            layers.append(nn.Dropout(p))
            in_features = out_features
        layers.append(nn.Linear(in_features, CLASSES))
        layers.append(nn.LogSoftmax(dim=1))
        return nn.Sequential(*layers)

    def accuracy_on(model: nn.Module, data_loader: DataLoader) -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, target in data_loader:
                x, target = x.to(DEVICE), target.to(DEVICE)
                pred = model(x).argmax(dim=1, keepdim=True)
                correct += pred.eq(target.view_as(pred)).sum().item()
        return correct / len(data_loader.dataset)

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("device", str(DEVICE))
        model = define_model(trial).to(DEVICE)
        optimizer_name = trial.suggest_categorical("optimizer", ["Adam"])
        lr = trial.suggest_float("lr", *SPACE["lr"], log=True)
        optimizer = getattr(optim, optimizer_name)(model.parameters(), lr=lr)
        best_accuracy, best_state = -1.0, None
        for epoch in range(1, EPOCHS + 1):
            model.train()
            for x, target in train_loader:
                x, target = x.to(DEVICE), target.to(DEVICE)
                optimizer.zero_grad()
                output = model(x)
                loss = F.nll_loss(output, target)
                loss.backward()
                optimizer.step()
            accuracy = accuracy_on(model, valid_loader)
            if accuracy > best_accuracy:
                best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.exceptions.TrialPruned()
        model.load_state_dict(best_state)
        trial.set_user_attr("test_accuracy", accuracy_on(model, test_loader))
        return best_accuracy

    sampler = optuna.samplers.TPESampler(seed=args.seed, multivariate=True, group=True, n_startup_trials=10)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min(3, max(EPOCHS - 1, 0)))
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=args.trials)
    return _summarize(study, started, time.perf_counter() - clock, args.target)


def run_archsearch(args: argparse.Namespace, started: datetime.datetime, clock: float) -> dict[str, Any]:
    """The same search through archsearch's controller and worker pool, stored in SQLite."""
    from archsearch import SearchConfig, StudyConfig, TrainConfig, run_search
    from archsearch.spaces import MLPSpace

    workdir = Path(args.workdir)
    config = SearchConfig(
        study=StudyConfig(
            name=f"bench-{args.dataset}-{args.seed}",
            storage=f"sqlite:///{workdir / 'archsearch.db'}",
            n_trials=args.trials,
            sampler="tpe",
            pruner="median",
            seed=args.seed,
            artifacts=str(workdir / "artifacts"),
        ),
        data=data_spec(args.dataset, args.teacher_rows),
        space=MLPSpace(
            layers=SPACE["layers"],
            width=SPACE["width"],
            width_log=True,
            dropout=SPACE["dropout"],
            dropout_step=DROPOUT_STEP,
            activation=("relu",),
            lr=SPACE["lr"],
            weight_decay=(0.0, 0.0),
            batch_size=(BATCHSIZE,),
            optimizer=("adam",),
            # The reference's recipe: a constant lr, plain cross-entropy, no norm layers (not archsearch's defaults).
            lr_schedule=("constant",),
            label_smoothing=(0.0, 0.0),
            normalization=("none",),
            embedding=("none",),
        ),
        train=TrainConfig(
            epochs=args.epochs,
            patience=None,
            warmup=0.0,
            device=args.device,
            engine="fused" if args.child == "archsearch-fused" else "single",
            slots=args.slots,
        ),
    )
    study = run_search(config, workers=None, trials_per_gpu=args.trials_per_gpu, log_dir=workdir / "logs")
    return _summarize(study, started, time.perf_counter() - clock, args.target)


def _child(args: argparse.Namespace) -> None:
    # The clock starts before torch, optuna or archsearch is imported, so both pay their imports.
    started, clock = datetime.datetime.now(), time.perf_counter()
    run = run_reference if args.child == "reference" else run_archsearch
    emit(run(args, started, clock))


def _run_pair(args: argparse.Namespace, dataset: str, budget: Budget, seed: int, order: tuple[str, ...]) -> list[dict]:
    rows = []
    for contender in order:
        workdir = tempfile.mkdtemp(prefix="archsearch-bench-")
        argv = [
            str(Path(__file__).resolve()),
            "--child",
            contender,
            "--dataset",
            dataset,
            "--seed",
            str(seed),
            "--trials",
            str(budget.trials),
            "--epochs",
            str(budget.epochs),
            "--target",
            str(budget.target),
            "--teacher-rows",
            str(budget.teacher_rows),
            "--device",
            args.device,
            "--trials-per-gpu",
            str(args.trials_per_gpu),
            "--workdir",
            workdir,
            "--slots",
            str(args.slots),
        ]
        if args.reference_threads:
            argv += ["--reference-threads", str(args.reference_threads)]
        try:
            child = run_child(argv, timeout=args.child_timeout)
            row = {
                "dataset": dataset,
                "seed": seed,
                "contender": contender,
                **child.payload,
                "peak_rss_mb": child.peak_rss_mb,
            }
        except ChildFailed as e:
            print(f"  {contender} failed: {e}", file=sys.stderr)
            row = {"dataset": dataset, "seed": seed, "contender": contender, "error": str(e)[:500]}
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        rows.append(row)
        if "error" not in row:
            print(
                f"  {dataset} seed {seed} {contender:<10} {row['wall_s']:7.1f} s  {row['finished']} trials "
                f"({row['pruned']} pruned, {row['epochs_trained']} epochs)  best val {row['best_val']:.4f}  "
                f"test {row['best_test']:.4f}  to target {_fmt(row['time_to_target_s'], '.1f')} s  "
                f"peak {row['peak_rss_mb']:.0f} MB" + ("" if args.device == "cpu" else f"  devices {row['devices']}"),
                file=sys.stderr,
                flush=True,
            )
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def aggregate(rows: list[dict], dataset: str, budget: Budget) -> tuple[str, dict[str, Any]]:
    """The per-dataset table (means over seeds) and the checks against issue #5's targets."""
    means: dict[str, dict[str, Any]] = {}
    for contender in CONTENDERS:
        ok = [r for r in rows if r["dataset"] == dataset and r["contender"] == contender and "error" not in r]
        reached = [r["time_to_target_s"] for r in ok if r["time_to_target_s"] is not None]
        means[contender] = {
            "runs": len(ok),
            "wall_s": mean_or_none([r["wall_s"] for r in ok]),
            "trials_per_min": mean_or_none([60 * r["finished"] / r["wall_s"] for r in ok]),
            "time_to_target_s": mean_or_none(reached),
            "reached": f"{len(reached)}/{len(ok)}",
            "best_val": mean_or_none([r["best_val"] for r in ok]),
            "best_test": mean_or_none([r["best_test"] for r in ok]),
            "peak_rss_mb": mean_or_none([r["peak_rss_mb"] for r in ok]),
        }
    ref, arch, fused = means["reference"], means["archsearch"], means["archsearch-fused"]
    header = [
        "",
        "wall s",
        "trials/min",
        f"time to val acc {budget.target} s (runs reaching it)",
        "best val acc",
        "best test acc",
        "peak RSS MB",
    ]

    def line(name: str, m: dict[str, Any]) -> list[Any]:
        return [
            name,
            _fmt(m["wall_s"], ".1f"),
            _fmt(m["trials_per_min"], ".1f"),
            f"{_fmt(m['time_to_target_s'], '.1f')} ({m['reached']})",
            _fmt(m["best_val"], ".4f"),
            _fmt(m["best_test"], ".4f"),
            _fmt(m["peak_rss_mb"], ".0f"),
        ]

    def ratio_row(name: str, a: dict[str, Any], b: dict[str, Any]) -> list[Any]:
        return [
            name,
            _ratio(a["wall_s"], b["wall_s"]),
            _ratio(a["trials_per_min"], b["trials_per_min"]),
            _ratio(a["time_to_target_s"], b["time_to_target_s"]),
            _fmt(
                None if a["best_val"] is None or b["best_val"] is None else 100 * (a["best_val"] - b["best_val"]),
                "+.2f",
            )
            + " pts",
            _fmt(
                None if a["best_test"] is None or b["best_test"] is None else 100 * (a["best_test"] - b["best_test"]),
                "+.2f",
            )
            + " pts",
            _ratio(a["peak_rss_mb"], b["peak_rss_mb"]),
        ]

    table = markdown_table(
        header,
        [
            line("reference (Optuna example)", ref),
            line("archsearch", arch),
            line("archsearch, fused engine", fused),
            ratio_row("archsearch / reference", arch, ref),
            ratio_row("fused / reference", fused, ref),
            ratio_row("fused / archsearch", fused, arch),
        ],
    )
    checks = {}
    if ref["trials_per_min"] and arch["trials_per_min"]:
        speedup = arch["trials_per_min"] / ref["trials_per_min"]
        checks["trials/min >= 3x reference"] = (speedup >= 3, f"{speedup:.2f}x")
    if ref["trials_per_min"] and fused["trials_per_min"] and arch["trials_per_min"]:
        goal = 3 if dataset == "digits" else 6  # issue #11's targets for the fused engine
        speedup = fused["trials_per_min"] / ref["trials_per_min"]
        checks[f"fused trials/min >= {goal}x reference"] = (speedup >= goal, f"{speedup:.2f}x")
        over_single = fused["trials_per_min"] / arch["trials_per_min"]
        checks["fused trials/min >= 2x single-engine archsearch"] = (over_single >= 2, f"{over_single:.2f}x")
    if ref["best_val"] is not None and fused["best_val"] is not None:
        gap = 100 * (ref["best_val"] - fused["best_val"])
        checks["fused best val no more than 0.5 points below"] = (gap <= 0.5, f"{-gap:+.2f} points")
    if ref["best_val"] is not None and arch["best_val"] is not None:
        gap = 100 * (ref["best_val"] - arch["best_val"])
        checks["best val no more than 0.5 points below"] = (gap <= 0.5, f"{-gap:+.2f} points")
    if dataset == "digits" and ref["time_to_target_s"] and arch["time_to_target_s"]:
        fraction = arch["time_to_target_s"] / ref["time_to_target_s"]
        checks["time to 0.97 <= 1/3 of reference"] = (fraction <= 1 / 3, f"{fraction:.2f}")
    return table, {"means": means, "checks": {k: {"pass": p, "value": v} for k, (p, v) in checks.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one seed, small budgets, 10,000 teacher rows (1-2 minutes)"
    )
    parser.add_argument("--seeds", type=int, help="seeds per dataset (default 3; 1 with --quick)")
    parser.add_argument("--trials", type=int, help="trial budget per search (default: per dataset, see BUDGETS)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: per dataset)")
    parser.add_argument("--datasets", default="digits,teacher", help="comma-separated: digits, teacher")
    parser.add_argument(
        "--teacher-rows", type=int, help="rows of the teacher dataset (default 50,000; 10,000 with --quick)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both contenders)")
    parser.add_argument("--trials-per-gpu", type=int, default=1, help="archsearch workers per GPU with --device cuda")
    parser.add_argument("--slots", type=int, default=8, help="trials per worker of the fused contender (default 8)")
    parser.add_argument(
        "--reference-threads",
        type=int,
        help="torch threads of the reference (default: torch's own, as the example runs)",
    )
    parser.add_argument("--child-timeout", type=float, default=900, help="seconds before one search is killed")
    parser.add_argument("--json", help="also write every run and the summary to this JSON file")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    for hidden in ("--dataset", "--workdir"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0

    machine = machine_summary()
    print_machine(machine)
    seeds = args.seeds or (1 if args.quick else 3)
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    rows: list[dict] = []
    report: dict[str, Any] = {"machine": machine, "argv": sys.argv[1:], "datasets": {}}
    for dataset in args.datasets.split(","):
        if dataset not in budgets:
            parser.error(f"unknown dataset {dataset!r}; use digits or teacher")
        base = budgets[dataset]
        budget = Budget(
            trials=args.trials or base.trials,
            epochs=args.epochs or base.epochs,
            target=base.target,
            teacher_rows=args.teacher_rows or base.teacher_rows,
        )
        what = f"{dataset}" + (
            f" ({budget.teacher_rows} rows x 64 features x 10 classes)" if dataset == "teacher" else ""
        )
        threads = args.reference_threads or "torch default"
        print(
            f"\n## {what}: {budget.trials} trials x {budget.epochs} epochs, batch {BATCHSIZE}, {seeds} seed(s), "
            f"device {args.device}, reference threads {threads}",
            flush=True,
        )
        for seed in range(seeds):
            # Alternate who goes first, so that slow drift of the shared machine hits both.
            order = CONTENDERS if seed % 2 == 0 else CONTENDERS[::-1]
            rows += _run_pair(args, dataset, budget, seed, order)
        table, summary = aggregate(rows, dataset, budget)
        print(table)
        for name, check in summary["checks"].items():
            print(f"- {name}: {'PASS' if check['pass'] else 'FAIL'} ({check['value']})")
        report["datasets"][dataset] = {"budget": budget.__dict__, **summary}
    report["runs"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
