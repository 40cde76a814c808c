"""Per-epoch time of archsearch's trainer against a plain nn.Sequential + DataLoader loop.

An epoch is one pass over the training rows in batches of 128 plus the validation accuracy, for both:
archsearch's `train_mlp` (tensors on the device, one shuffle per epoch, batched evaluation) and the loop
of Optuna's PyTorch example (`DataLoader` over a `TensorDataset`, batches moved to the device, validation
in batches of 128). Same data, same architecture (ReLU, dropout 0.2 after each hidden layer), Adam. The two alternate within one process, after one warm-up run each, and the first epoch of every
run is left out of the median.

The fused part (`--part fused`) runs the same mixed list of trials (four architectures, eight learning
rates, two optimizers, dropout 0) through `train_mlp` one after another and through `train_fused` with K
slots, on digits and on teacher, and quotes trial-epochs per second, the trials per minute that rate gives
for a 20-epoch trial, and the fused/single ratio. Both include each epoch's validation metric and each
trial's final metrics; the data is loaded once, outside the timing.

Usage:
    python benchmarks/trainer_step.py                  # CPU, 1 thread (what each archsearch CPU worker uses)
    python benchmarks/trainer_step.py --threads 2      # torch's threads for both
    python benchmarks/trainer_step.py --device cuda
    python benchmarks/trainer_step.py --part fused --slots 1 4 16 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from _common import machine_summary, markdown_table, print_machine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from archsearch.spaces import NetSpec
from archsearch.trainers import FusedGroup, SlotSpec, TrainSettings, train_fused, train_mlp
from archsearch.trainers.data import DataSpec, PreparedData, TeacherSpec, load_data

BATCH = 128
FEATURES = 64
CLASSES = 10
# (rows before the 60/20/20 split, hidden width, hidden layers)
SIZES = [(2_000, 32, 1), (2_000, 128, 2), (50_000, 16, 1), (50_000, 64, 2), (50_000, 128, 3), (50_000, 512, 3)]
QUICK_SIZES = [(2_000, 32, 1), (20_000, 64, 2)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def archsearch_epochs(data: PreparedData, width: int, depth: int, epochs: int, device: torch.device) -> list[float]:
    """Seconds per epoch (training pass + validation metric) of train_mlp, read at its report callback."""
    stamps = [time.perf_counter()]

    def report(epoch: int, value: float) -> bool:
        _sync(device)
        stamps.append(time.perf_counter())
        return False

    settings = TrainSettings(lr=1e-3, batch_size=BATCH, epochs=epochs, seed=0, device=str(device))
    train_mlp(NetSpec([width] * depth, [0.2] * depth, "relu"), data, settings, report)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def plain_epochs(data: PreparedData, width: int, depth: int, epochs: int, device: torch.device) -> list[float]:
    """Seconds per epoch of the Optuna-example loop on the same data and architecture."""
    layers: list[nn.Module] = []
    fan_in = data.n_features
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU(), nn.Dropout(0.2)]
        fan_in = width
    model = nn.Sequential(*layers, nn.Linear(fan_in, data.n_outputs), nn.LogSoftmax(dim=1)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = DataLoader(
        TensorDataset(torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)), batch_size=BATCH, shuffle=True
    )
    valid = DataLoader(TensorDataset(torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)), batch_size=BATCH)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for x, y in train:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in valid:
                x, y = x.to(device), y.to(device)
                correct += model(x).argmax(dim=1).eq(y).sum().item()
        _sync(device)
        seconds.append(time.perf_counter() - started)
    return seconds


# Per case: the data, the architectures the trials cycle through, and the group's bucket (depth, width). The
# one-bucket cases fill their bucket with little padding; the mixed case pads a depth-1 network to 3 layers
# of 128 units, which costs the fused engine arithmetic that the single engine never does.
FUSED_CASES = {
    "digits": (DataSpec(dataset="digits"), [(64, 32), (64, 64), (48, 32), (64, 16)], 2, 64),
    "digits, mixed depths": (DataSpec(dataset="digits"), [(64, 32), (128,), (32, 32, 32), (64,)], 3, 128),
    "teacher": (
        DataSpec(dataset="teacher", teacher=TeacherSpec(rows=20_000, features=FEATURES, classes=CLASSES)),
        [(128, 64), (128, 128), (96, 64), (128, 32)],
        2,
        128,
    ),
    # Wide networks padded to 3 x 512: whether a GPU step of them still costs only its launches (the
    # padding rule's free size on CUDA); far too slow for the CPU's default run, so only with --cases.
    "teacher, 3 x 512": (
        DataSpec(dataset="teacher", teacher=TeacherSpec(rows=20_000, features=FEATURES, classes=CLASSES)),
        [(512, 512, 512), (512, 256), (256, 256, 256), (128,)],
        3,
        512,
    ),
    # The default space's "pl" embedding, 16 values a feature: 64 features become 1,024 first-layer inputs.
    "digits, pl 16": (DataSpec(dataset="digits"), [(64, 32), (64, 64), (48, 32), (64, 16)], 2, 64),
}
EMBEDDED_CASES = {"digits, pl 16": ("pl", 16)}  # (embedding, embedding_dim) of the cases that have one
DEFAULT_CASES = ["digits", "digits, mixed depths", "teacher", "digits, pl 16"]
TRIAL_EPOCHS = 20  # the trial length for the trials-per-minute figure


def fused_specs(
    architectures: list[tuple[int, ...]], n: int, epochs: int, device: str, embedding: tuple[str, int] = ("none", 8)
) -> list[SlotSpec]:
    """`n` trials cycling through the architectures, learning rates and optimizers, each with its own seed."""
    lrs = [3e-4, 1e-3, 3e-3, 1e-2, 5e-4, 2e-3, 5e-3, 2e-2]
    return [
        SlotSpec(
            NetSpec(
                architectures[i % len(architectures)],
                (0.0,) * len(architectures[i % len(architectures)]),
                "relu",
                embedding=embedding[0],
                embedding_dim=embedding[1],
            ),
            TrainSettings(
                lr=lrs[i % len(lrs)],
                optimizer="adamw" if i % 2 else "adam",
                batch_size=BATCH,
                epochs=epochs,
                seed=i,
                device=device,
            ),
        )
        for i in range(n)
    ]


def _peak_memory(device: torch.device) -> str:
    """The GPU memory torch held at peak since the last reset, or "n/a" off CUDA."""
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB" if device.type == "cuda" else "n/a"


def fused_rows(
    case: str, slots: list[int], epochs: int, single_trials: int, device: torch.device
) -> list[list[object]]:
    """One row for the single engine, then one per K: trial-epochs per second and the ratio to single."""
    spec, architectures, max_depth, max_width = FUSED_CASES[case]
    data = load_data(spec)
    embedding = EMBEDDED_CASES.get(case, ("none", 8))
    group = FusedGroup(
        "relu",
        batch_size=BATCH,
        max_depth=max_depth,
        max_width=max_width,
        device=str(device),
        embedding=embedding[0],
        embedding_dim=embedding[1],
    )

    def single(trial: SlotSpec) -> None:
        train_mlp(
            NetSpec(trial.widths, trial.dropouts, "relu", embedding=embedding[0], embedding_dim=embedding[1]),
            data,
            trial.settings,
        )

    warm = fused_specs(architectures, 2, 1, str(device), embedding)
    train_fused(warm, data, group, 2)  # warm-up of both engines' first-call costs
    for trial in warm:
        single(trial)
    trials = fused_specs(architectures, single_trials, epochs, str(device), embedding)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for trial in trials:
        single(trial)
    _sync(device)
    single_rate = single_trials * epochs / (time.perf_counter() - started)
    rows: list[list[object]] = [
        [
            case,
            f"{len(data.y_train):,}",
            "single",
            single_trials,
            f"{single_rate:.1f}",
            f"{60 * single_rate / TRIAL_EPOCHS:.0f}",
            "1.00x",
            _peak_memory(device),
        ]
    ]
    print(f"  {case} single: {single_rate:.1f} trial-epochs/s", file=sys.stderr, flush=True)
    for k in slots:
        trials = fused_specs(architectures, k, epochs, str(device), embedding)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        train_fused(trials, data, group, k)
        _sync(device)
        rate = k * epochs / (time.perf_counter() - started)
        rows.append(
            [
                case,
                f"{len(data.y_train):,}",
                f"fused K={k}",
                k,
                f"{rate:.1f}",
                f"{60 * rate / TRIAL_EPOCHS:.0f}",
                f"{rate / single_rate:.2f}x",
                _peak_memory(device),
            ]
        )
        print(
            f"  {case} fused K={k}: {rate:.1f} trial-epochs/s ({rate / single_rate:.2f}x)", file=sys.stderr, flush=True
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both (default 1)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is left out (default 4)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating runs of each contender per size (default 3)"
    )
    parser.add_argument("--quick", action="store_true", help="two small sizes, for a smoke test")
    parser.add_argument(
        "--part", choices=["plain", "fused", "all"], default="all", help="which comparison (default all)"
    )
    parser.add_argument(
        "--slots", type=int, nargs="+", default=[1, 4, 16, 64], help="fused K values (default 1 4 16 64)"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=list(FUSED_CASES),
        default=DEFAULT_CASES,
        help="fused cases (default the first 3 and digits, pl 16)",
    )
    parser.add_argument("--fused-epochs", type=int, default=3, help="epochs per trial in the fused part (default 3)")
    parser.add_argument("--single-trials", type=int, default=8, help="trials the single engine runs (default 8)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print_machine(machine_summary())
    if args.part in ("fused", "all"):
        print(
            f"fused against single engine: device {device}, {torch.get_num_threads()} thread(s), batch {BATCH}, dropout 0, "
            f"{args.fused_epochs} epochs per trial, trials/min for {TRIAL_EPOCHS}-epoch trials\n"
        )
        rows = [
            row
            for case in args.cases
            for row in fused_rows(case, args.slots, args.fused_epochs, args.single_trials, device)
        ]
        print(
            markdown_table(
                [
                    "case",
                    "train rows",
                    "engine",
                    "trials",
                    "trial-epochs/s",
                    "trials/min (20 epochs)",
                    "vs single",
                    "peak GPU memory",
                ],
                rows,
            )
        )
        print()
    if args.part == "fused":
        return 0
    print(
        f"device {device}, {torch.get_num_threads()} thread(s), batch {BATCH}, Adam, ReLU, dropout 0.2; "
        f"median epoch of {args.repeats} runs x {args.epochs - 1} epochs\n"
    )
    rows = []
    for n_rows, width, depth in QUICK_SIZES if args.quick else SIZES:
        data = load_data(
            DataSpec(dataset="teacher", teacher=TeacherSpec(rows=n_rows, features=FEATURES, classes=CLASSES))
        )
        contenders = {"archsearch": archsearch_epochs, "plain": plain_epochs}
        for run in contenders.values():  # warm-up: first-call costs of the allocator, kernels and autograd
            run(data, width, depth, 2, device)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for repeat in range(args.repeats):
            names = list(contenders) if repeat % 2 == 0 else list(contenders)[::-1]
            for name in names:
                times[name] += contenders[name](data, width, depth, args.epochs, device)[1:]
        arch, plain = statistics.median(times["archsearch"]), statistics.median(times["plain"])
        rows.append(
            [
                f"{len(data.y_train):,}",
                width,
                depth,
                f"{1000 * plain:.1f}",
                f"{1000 * arch:.1f}",
                f"{plain / arch:.2f}x",
                f"{1e6 * arch / -(-len(data.y_train) // BATCH):.0f}",
            ]
        )
        print(
            f"  {n_rows} rows, width {width}, {depth} layer(s): plain {1000 * plain:.1f} ms, archsearch {1000 * arch:.1f} ms",
            file=sys.stderr,
            flush=True,
        )
    print(
        markdown_table(
            [
                "train rows",
                "width",
                "layers",
                "plain DataLoader ms/epoch",
                "archsearch ms/epoch",
                "speedup",
                "archsearch us per batch (epoch / batches)",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
