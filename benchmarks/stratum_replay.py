"""Replay variants of archsearch's stratum pruning rule over unpruned multi-objective searches (issue #26).

Input: `benchmarks/size_front.py --methods multi_nopruning --histories` results, whose every trial ran to its
end (or its early stop) and kept its validation curve. Each variant is replayed over each run's trials in
trial order with the rule's own code (`stratum_check`): a trial is judged at each epoch against the trials
before it that the variant let complete, as one worker would judge it; a pruned trial keeps only the
epochs it trained and is no peer for later trials. What the replay cannot show: the sampler would have
proposed other trials after a prune (the real searches in `size_front.py --trials N` show that).

Per variant: the share of trials pruned and of epochs saved, the hypervolume lost against the unpruned
search (same reference point as size_front.py), and the budgets (of 3 per run) whose best val accuracy fell.

    python benchmarks/stratum_replay.py benchmarks/results/size_front_nopruning_histories.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from archsearch.pool._stratum import StratumPolicy, stratum_check, stratum_of
from archsearch.stats import log_cost_hypervolume

BUDGETS = (1_000, 5_000, 25_000)
REF_SCORE, REF_PARAMS = 0.5, 1_000_000
PRUNE_FROM, STARTUP = 3, 3  # size_front.py's 30 epochs (warm-up min(3, epochs - 1)) and pruner_startup_trials
# Variant: (percentile, min_peers, patience, tolerance in resolution steps, peers).
# Peers: "same" stratum; "thin" adds the two neighbouring strata while the own one has too few;
# "smaller" takes the own and every smaller stratum (a trial that trails smaller networks ends dominated).
VARIANTS = {
    "median, 3 peers (before)": (50.0, 3, 1, 0, "same"),
    "median, 5 peers": (50.0, 5, 1, 0, "same"),
    "median, 8 peers": (50.0, 8, 1, 0, "same"),
    "median, patience 2": (50.0, 3, 2, 0, "same"),
    "median, patience 3": (50.0, 3, 3, 0, "same"),
    "median, tolerance 1 step": (50.0, 3, 1, 1, "same"),
    "median, tolerance 2 steps": (50.0, 3, 1, 2, "same"),
    "bottom quarter, 3 peers": (75.0, 3, 1, 0, "same"),
    "bottom quarter, 5 peers": (75.0, 5, 1, 0, "same"),
    "median, neighbours when thin": (50.0, 3, 1, 0, "thin"),
    "median, smaller strata too": (50.0, 3, 1, 0, "smaller"),
    "median, 5 peers, tolerance 1": (50.0, 5, 1, 1, "same"),
    "median, 5 peers, patience 2": (50.0, 5, 2, 0, "same"),
    "median, 5 peers, patience 2, tolerance 1": (50.0, 5, 2, 1, "same"),
    "median, 3 peers, patience 2, tolerance 1": (50.0, 3, 2, 1, "same"),
    "bottom quarter, 5 peers, tolerance 1": (75.0, 5, 1, 1, "same"),
    "bottom quarter, 5 peers, patience 2, tolerance 1": (75.0, 5, 2, 1, "same"),
    "median, 5 peers, patience 2, tolerance 1, thin": (50.0, 5, 2, 1, "thin"),
}


def resolution(trials: list) -> float:
    """The smallest gap between two values of any curve: one validation row's worth of accuracy."""
    values = sorted({round(v, 6) for _, h in trials for v in h})
    return min((b - a for a, b in zip(values, values[1:])), default=0.0)


def peer_view(done: list[tuple[int, list[float]]], stratum: int, how: str, min_peers: int) -> dict:
    """The peers a trial of `stratum` sees, keyed by that stratum as `stratum_check` reads them."""
    by: dict[int, list[list[float]]] = {}
    for params, history in done:
        by.setdefault(stratum_of(params), []).append(history)
    own = by.get(stratum, [])
    if how == "smaller":
        own = [h for s, hs in by.items() if s <= stratum for h in hs]
    elif how == "thin" and len(own) < min_peers:
        own = own + by.get(stratum - 1, []) + by.get(stratum + 1, [])
    return {stratum: own}


def replay(trials: list, variant: tuple, step: float) -> tuple[list, int, int]:
    """The trials kept complete, and the epochs trained and saved, under one variant."""
    percentile, min_peers, patience, tolerance, how = variant
    policy = StratumPolicy(percentile, True, min_peers=min_peers, patience=patience, tolerance=tolerance * step)
    done: list[tuple[int, list[float]]] = []
    trained = saved = 0
    for params, history in trials:
        view = {} if len(done) < STARTUP else peer_view(done, stratum_of(params), how, min_peers)
        check = stratum_check(params, lambda view=view: view, policy, PRUNE_FROM, "accuracy")
        stop = next((e for e, v in enumerate(history, start=1) if check(e, v)), None)
        trained += len(history) if stop is None else stop
        saved += 0 if stop is None else len(history) - stop
        if stop is None:
            done.append((params, history))
    return done, trained, saved


def front_figures(done: list) -> tuple[float, list[float | None]]:
    scores, params = [max(h) for _, h in done], [p for p, _ in done]
    hv = log_cost_hypervolume(scores, params, REF_SCORE, REF_PARAMS)
    return hv, [max((s for s, p in zip(scores, params) if p <= b), default=None) for b in BUDGETS]


def evaluate(runs: list[dict], variant: tuple) -> dict:
    pruned, saved_share, hv_loss, budget_misses, hv_misses = [], [], [], 0, 0
    for run in runs:
        trials = [(p, h) for p, h in run["trials"] if h]
        full_hv, full_best = front_figures(trials)
        done, trained, saved = replay(trials, variant, resolution(trials))
        hv, best = front_figures(done)
        pruned.append(1 - len(done) / len(trials))
        saved_share.append(saved / (trained + saved))
        hv_loss.append(full_hv - hv)
        hv_misses += full_hv - hv > 1e-9
        budget_misses += sum(b is None or (f is not None and b < f - 1e-9) for b, f in zip(best, full_best))
    return {
        "pruned_share": round(statistics.mean(pruned), 3),
        "epochs_saved_share": round(statistics.mean(saved_share), 3),
        "hv_loss_mean": round(statistics.mean(hv_loss), 5),
        "runs_with_hv_loss": hv_misses,
        "budgets_lost": budget_misses,
        "runs": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="size_front.py --histories json files")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runs = [r for f in args.results for r in json.loads(f.read_text())["runs"] if r.get("trials")]
    rows = {}
    print(
        "| variant | table | trials pruned | epochs saved | hypervolume lost (mean) | runs losing hv | budgets lost |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, variant in VARIANTS.items():
        for table in sorted({r["table"] for r in runs}):
            row = evaluate([r for r in runs if r["table"] == table], variant)
            rows[f"{name} | {table}"] = row
            print(
                f"| {name} | {table} | {row['pruned_share']:.0%} | {row['epochs_saved_share']:.0%} | "
                f"{row['hv_loss_mean']:.4f} | {row['runs_with_hv_loss']} of {row['runs']} | "
                f"{row['budgets_lost']} of {3 * row['runs']} |"
            )
    if args.out is not None:
        args.out.write_text(json.dumps({"variants": VARIANTS, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
