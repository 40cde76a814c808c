"""Would a smoother selection rule pick better trials than the best validation epoch? (issue #10)

A trial's value is its best epoch's validation metric: a maximum over up to 100 noisy epochs, which may
favour trials whose validation curve is noisy (a high constant learning rate) over steadier ones. This
reads the studies that `quality_vs_peers.py --keep-studies DIR` kept and compares, per study, the trial
each rule picks by its stored `test_<metric>` (archsearch's own test split, the weights of the trial's
best epoch; no refit, so nothing is trained here):

- `best epoch`: the study's best trial (today's rule);
- `around best, W`: the mean validation metric over the W epochs centred on the trial's best epoch;
- `best window, W`: the best mean over any W consecutive epochs;
- `oracle`: the trial with the best test metric, the ceiling of any rule.

Differences are x100 for a maximised metric (accuracy points) and in % of the chosen trial's value for a
minimised one (% of RMSE), positive = the rule's pick tests better.

    python benchmarks/selection_rule.py DIR [--windows 3,5,9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import optuna


def _curve(trial: optuna.trial.FrozenTrial, sign: int) -> list[float]:
    return [sign * trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]


def around_best(curve: list[float], window: int) -> float:
    best = max(range(len(curve)), key=curve.__getitem__)
    return statistics.mean(curve[max(0, best - window // 2) : best + window // 2 + 1])


def best_window(curve: list[float], window: int) -> float:
    if len(curve) <= window:
        return statistics.mean(curve)
    return max(statistics.mean(curve[i : i + window]) for i in range(len(curve) - window + 1))


def compare(path: Path, windows: list[int]) -> dict[str, float | int | str]:
    study = optuna.load_study(study_name="qbench", storage=f"sqlite:///{path}")
    metric = study.user_attrs["metric"]
    sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    trials = [
        t
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE and f"test_{metric}" in t.user_attrs and t.intermediate_values
    ]

    def test(trial: optuna.trial.FrozenTrial) -> float:
        return sign * trial.user_attrs[f"test_{metric}"]

    chosen = max(trials, key=lambda t: sign * t.value)
    unit = 100.0 if sign == 1 else 100.0 / abs(test(chosen))
    row: dict[str, float | int | str] = {"study": path.stem, "complete": len(trials)}
    for window in windows:
        for name, rule in (("around best", around_best), ("best window", best_window)):
            pick = max(trials, key=lambda t: rule(_curve(t, sign), window))
            row[f"{name}, {window}"] = (test(pick) - test(chosen)) * unit
    row["oracle"] = (max(map(test, trials)) - test(chosen)) * unit
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", type=Path, help="the --keep-studies folder of quality_vs_peers.py")
    parser.add_argument("--windows", default="3,5,9")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    windows = [int(w) for w in args.windows.split(",")]
    rows = [compare(path, windows) for path in sorted(args.studies.glob("*.db"))]
    if not rows:
        raise SystemExit(f"no *.db studies in {args.studies}")
    columns = [c for c in rows[0] if c not in ("study", "complete")]
    print("| study | complete trials | " + " | ".join(columns) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        print(f"| {row['study']} | {row['complete']} | " + " | ".join(f"{row[c]:+.2f}" for c in columns) + " |")
    print(
        f"| **mean (n = {len(rows)} studies)** | | "
        + " | ".join(f"{statistics.mean(r[c] for r in rows):+.2f}" for c in columns)
        + " |"
    )
    print(
        "| better / worse than best epoch | | "
        + " | ".join(f"{sum(r[c] > 1e-9 for r in rows)} / {sum(r[c] < -1e-9 for r in rows)}" for c in columns)
        + " |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
