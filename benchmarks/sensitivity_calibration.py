"""How often the sensitivity verdicts are right, on teacher data whose hidden width is known.

A teacher dataset (``[data] dataset = "teacher"``) is labelled by a random tanh MLP with one hidden layer
of ``--teacher-width`` units. The centre is one hidden layer ``--centre-width`` times wider, far past what
the data needs. Its neighbours, one per row of the result table:

- ``+1 neuron`` and ``-1 neuron``: next to no true effect on a wide centre; a ``worse`` or ``better``
  verdict here is a false alarm (target: at most 5%, the nominal family-wise rate);
- ``placebo``: the centre's own architecture trained with other seeds, so its true effect is exactly 0
  (a worse/better rate above 5% would be a miscalibrated test; how often it is ``equivalent`` is the
  power of the equivalence test, since its paired differences carry two runs' noise);
- ``add layer after 1``: a copy of the layer, harmless or nearly so on this data;
- ``linear model`` and ``width 1``: designed to hurt (the teacher has ``--teacher-width`` units), so
  they should be called ``worse`` (target: at least 80% at the default repeats).

Each repetition trains the centre and every neighbour with fresh seeds (repetition ``r`` uses seeds
``r * R .. r * R + R - 1``, R the number of seeds), then compares them through the very function the
analysis uses, `archsearch.stats.compare_to_centre` (Wilcoxon + Holm over the 6 neighbours for
better/worse, TOST against the centre's seed-to-seed sd for equivalence). It calls the trainer directly
instead of running `archsearch sensitivity` (no storage or worker pool), which keeps 20 repetitions
affordable on a 2-core CPU; the neighbours are those `archsearch.spaces.neighbourhood` builds.

Usage:
    python benchmarks/sensitivity_calibration.py                    # 20 repetitions, default repeats
    python benchmarks/sensitivity_calibration.py --reps 2 --epochs 3  # a quick look
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from dataclasses import replace

from _common import machine_summary, markdown_table, print_machine

from archsearch.sensitivity._jobs import Centre
from archsearch.sensitivity._run import default_repeats
from archsearch.spaces import Hyperparameters, Neighbour, NetSpec, neighbourhood
from archsearch.stats import VERDICTS, compare_to_centre, metric_resolution
from archsearch.trainers import TrainSettings, train_mlp
from archsearch.trainers.data import DataSpec, PreparedData, TeacherSpec, load_data

PLACEBO_SEED_OFFSET = 1_000_000  # the placebo's seeds never meet the centre's


def _neighbours(centre_width: int, n_inputs: int, n_outputs: int) -> dict[str, Neighbour]:
    """The centre, its +-1 neuron, layer-copy and linear neighbours, a far narrower width, and the placebo."""
    centre = NetSpec(widths=(centre_width,), dropouts=(0.0,), activation="relu")
    built = {n.change: n for n in neighbourhood(centre, n_inputs, n_outputs, steps=())}
    names = {
        "centre": "centre",
        f"layer 1: {centre_width} -> {centre_width + 1} (+1)": "+1 neuron",
        f"layer 1: {centre_width} -> {centre_width - 1} (-1)": "-1 neuron",
        f"add layer after 1 (copy of width {centre_width})": "add layer after 1",
    }
    arms = {names.get(change, change): n for change, n in built.items()}
    arms["linear model"] = arms.pop(next(c for c in arms if c.startswith("remove layer 1")))
    narrow = NetSpec(widths=(1,), dropouts=(0.0,), activation="relu")
    arms["width 1"] = Neighbour("width", f"layer 1: {centre_width} -> 1", 0, 1 - centre_width, narrow, "w=1")
    arms["placebo"] = replace(arms["centre"], kind="centre", change="placebo", key="placebo")
    return arms


def _train(data: PreparedData, widths: tuple[int, ...], seed: int, epochs: int, lr: float) -> float:
    settings = TrainSettings(lr=lr, batch_size=64, epochs=epochs, seed=seed, device="cpu", num_threads=1)
    result = train_mlp(NetSpec(widths, [0.0] * len(widths), "relu"), data, settings)
    return math.nan if result.best_value is None else result.best_value


def _wilson(k: int, n: int) -> str:
    """``k/n = p% [low, high]`` with the 95% Wilson interval."""
    if n == 0:
        return "n/a"
    z, p = 1.959964, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{k}/{n} = {100 * p:.0f}% [{100 * max(0.0, centre - half):.0f}, {100 * min(1.0, centre + half):.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions with fresh seeds (default 20)")
    parser.add_argument("--repeats", type=int, help="seeds per architecture (default: the analysis's default)")
    parser.add_argument("--teacher-width", type=int, default=8)
    parser.add_argument("--centre-width", type=int, default=64)
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    teacher = TeacherSpec(widths=(args.teacher_width,), rows=args.rows, features=10, classes=3, noise=0.05, seed=0)
    data = load_data(DataSpec(dataset="teacher", teacher=teacher))
    n_inputs, n_outputs = data.x_train.shape[1], 3
    arms = _neighbours(args.centre_width, n_inputs, n_outputs)
    # The same default as `archsearch sensitivity`: enough seeds for Holm's correction over these neighbours.
    hyperparameters = Hyperparameters(lr=args.lr, weight_decay=0.0, batch_size=64, optimizer="adam")
    centre = Centre(0, arms["centre"].architecture, hyperparameters, tuple(arms.values()), n_inputs)
    repeats = args.repeats or default_repeats([centre])
    print_machine(machine_summary())
    print(
        f"teacher: 1 hidden layer of {args.teacher_width} (tanh), {args.rows:,} rows, 10 features, 3 classes, 5% label "
        f"noise; centre: 1 layer of {args.centre_width} (relu); {args.epochs} epochs, lr {args.lr}, batch 64, "
        f"val accuracy; {repeats} seeds x {len(arms)} architectures x {args.reps} repetitions",
        flush=True,
    )
    verdicts: dict[str, Counter[str]] = {name: Counter() for name in arms if name != "centre"}
    means: dict[str, list[float]] = {name: [] for name in verdicts}
    start = time.perf_counter()
    for rep in range(args.reps):
        seeds = range(rep * repeats, (rep + 1) * repeats)
        values = {
            name: {
                seed: _train(
                    data,
                    arm.architecture.widths,
                    seed + (PLACEBO_SEED_OFFSET if name == "placebo" else 0),
                    args.epochs,
                    args.lr,
                )
                for seed in seeds
            }
            for name, arm in arms.items()
        }
        centre = values.pop("centre")
        # As the analysis does: no equivalence margin below one validation row.
        effects = compare_to_centre(
            centre, values, "maximize", resolution=metric_resolution("accuracy", len(data.y_val))
        )
        for name, effect in effects.items():
            verdicts[name][effect.verdict] += 1
            means[name].append(effect.mean)
        line = ", ".join(f"{name} {effect.verdict}" for name, effect in effects.items())
        print(f"rep {rep + 1}/{args.reps} ({time.perf_counter() - start:.0f} s): {line}", flush=True)

    rows = []
    for name, counts in verdicts.items():
        rows.append(
            [
                name,
                f"{sum(means[name]) / len(means[name]):+.4f}",
                *(_wilson(counts[v], args.reps) for v in VERDICTS),
            ]
        )
    print()
    print(f"{args.reps} repetitions x {repeats} seeds, {time.perf_counter() - start:,.0f} s")
    print(markdown_table(["neighbour", "mean diff (avg over reps)", *VERDICTS], rows))


if __name__ == "__main__":
    main()
