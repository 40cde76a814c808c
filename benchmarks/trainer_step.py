"""Per-epoch time of archsearch's trainer against a plain nn.Sequential + DataLoader loop.

An epoch is one pass over the training rows in batches of 128 plus the validation accuracy, for both:
archsearch's `train_mlp` (tensors on the device, one shuffle per epoch, batched evaluation) and the loop
of Optuna's PyTorch example (`DataLoader` over a `TensorDataset`, batches moved to the device, validation
in batches of 128). Same data, same architecture (ReLU, dropout 0.2 after each hidden layer), Adam. The two alternate within one process, after one warm-up run each, and the first epoch of every
run is left out of the median.

Usage:
    python benchmarks/trainer_step.py                  # CPU, 1 thread (what each archsearch CPU worker uses)
    python benchmarks/trainer_step.py --threads 2      # torch's threads for both
    python benchmarks/trainer_step.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from _common import machine_summary, markdown_table, print_machine

from archsearch.trainers import TrainSettings, train_mlp
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
    train_mlp([width] * depth, [0.2] * depth, "relu", data, settings, report)
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
    train = DataLoader(TensorDataset(torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)), batch_size=BATCH, shuffle=True)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both (default 1)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is left out (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each contender per size (default 3)")
    parser.add_argument("--quick", action="store_true", help="two small sizes, for a smoke test")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print_machine(machine_summary())
    print(f"device {device}, {torch.get_num_threads()} thread(s), batch {BATCH}, Adam, ReLU, dropout 0.2; "
          f"median epoch of {args.repeats} runs x {args.epochs - 1} epochs\n")
    rows = []
    for n_rows, width, depth in QUICK_SIZES if args.quick else SIZES:
        data = load_data(DataSpec(dataset="teacher", teacher=TeacherSpec(rows=n_rows, features=FEATURES, classes=CLASSES)))
        contenders = {"archsearch": archsearch_epochs, "plain": plain_epochs}
        for run in contenders.values():  # warm-up: first-call costs of the allocator, kernels and autograd
            run(data, width, depth, 2, device)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for repeat in range(args.repeats):
            names = list(contenders) if repeat % 2 == 0 else list(contenders)[::-1]
            for name in names:
                times[name] += contenders[name](data, width, depth, args.epochs, device)[1:]
        arch, plain = statistics.median(times["archsearch"]), statistics.median(times["plain"])
        rows.append([
            f"{len(data.y_train):,}", width, depth, f"{1000 * plain:.1f}", f"{1000 * arch:.1f}", f"{plain / arch:.2f}x",
            f"{1e6 * arch / -(-len(data.y_train) // BATCH):.0f}",
        ])
        print(f"  {n_rows} rows, width {width}, {depth} layer(s): plain {1000 * plain:.1f} ms, archsearch {1000 * arch:.1f} ms", file=sys.stderr, flush=True)
    print(markdown_table(
        ["train rows", "width", "layers", "plain DataLoader ms/epoch", "archsearch ms/epoch", "speedup", "archsearch us per batch (epoch / batches)"], rows
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
