"""The Markdown of `quality_vs_peers.py --table`: one typed summary per dataset, and every line rendered from it.

Differences to a peer are signed so that positive means archsearch is better: accuracy points
(100 x difference of mean accuracy) for classification, percent of the peer's mean RMSE for regression,
each over the seeds that both ran (paired), so a dataset with fewer archsearch seeds compares like with like.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from _common import markdown_table

# In run order: RealMLP-TD before archsearch, whose default timeout is RealMLP-TD's time.
CONTENDERS = ("linear", "hgb", "realmlp", "archsearch")
LABELS = {"linear": "linear", "hgb": "HGB", "realmlp": "RealMLP-TD", "archsearch": "archsearch"}
# The targets of issue #10: how far below RealMLP-TD archsearch may fall on any dataset.
MAX_SHORTFALL = {"accuracy": 0.5, "rmse": 2.0}


@dataclass(frozen=True)
class Cell:
    """One contender on one dataset, over the seeds it ran."""

    values: dict[int, float]  # test metric by seed
    wall: float  # mean seconds
    cpu: float  # mean CPU seconds (user + system, workers included)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values())

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values.values()) if len(self.values) > 1 else None

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    source: str
    rows: str
    n_train: int
    n_test: int
    metric: str
    cells: dict[str, Cell]
    archsearch: list[dict[str, Any]]  # its records, for the validation/test gap

    def better(self, contender: str, peer: str) -> float | None:
        """How much `contender` beats `peer` on the seeds both ran: accuracy points, or percent of the peer's RMSE."""
        if contender not in self.cells or peer not in self.cells:
            return None
        seeds = self.cells[contender].values.keys() & self.cells[peer].values.keys()
        if not seeds:
            return None
        mine = statistics.fmean(self.cells[contender].values[s] for s in seeds)
        theirs = statistics.fmean(self.cells[peer].values[s] for s in seeds)
        if self.metric == "accuracy":
            return 100 * (mine - theirs)
        return 100 * (theirs - mine) / theirs

    def rank(self, contender: str) -> int | None:
        """1 = best mean test metric among the contenders that ran here (all four, or None)."""
        if contender not in self.cells or len(self.cells) < len(CONTENDERS):
            return None
        diffs = [self.better(peer, contender) for peer in self.cells if peer != contender]
        if None in diffs:
            return None
        return 1 + sum(1 for d in diffs if d > 0)


def summarize(records: dict[tuple[str, str, int], dict[str, Any]]) -> list[DatasetSummary]:
    names = list(dict.fromkeys(dataset for dataset, _, _ in sorted(records, key=lambda k: _order(records, k))))
    summaries = []
    for name in names:
        mine = {key: r for key, r in records.items() if key[0] == name}
        first = next(iter(mine.values()))
        cells = {}
        for contender in CONTENDERS:
            runs = [r for (_, c, _), r in sorted(mine.items()) if c == contender]
            if runs:
                cells[contender] = Cell(
                    values={r["seed"]: r["test"] for r in runs},
                    wall=statistics.fmean(r["wall_seconds"] for r in runs),
                    cpu=statistics.fmean(r["cpu_seconds"] for r in runs),
                )
        summaries.append(
            DatasetSummary(
                name=name,
                source=first["source"],
                rows=first["rows"],
                n_train=first["n_train"],
                n_test=first["n_test"],
                metric=first["metric"],
                cells=cells,
                archsearch=[r for (_, c, _), r in sorted(mine.items()) if c == "archsearch"],
            )
        )
    return summaries


def _order(records: dict, key: tuple[str, str, int]) -> tuple[int, str]:
    # Classification tables first, then regression, each alphabetically.
    return (records[key]["metric"] != "accuracy", key[0])


def render(records: dict[tuple[str, str, int], dict[str, Any]]) -> str:
    """The results table, the archsearch validation/test gap table and the verdict lines, as Markdown."""
    if not records:
        return "The cache holds no results yet."
    summaries = summarize(records)
    return "\n\n".join([_results_table(summaries), _verdict(summaries), _gap_table(summaries)])


def _fmt(metric: str, value: float, digits: int = 4) -> str:
    if metric == "accuracy":
        return f"{value:.4f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"


def _cell(summary: DatasetSummary, contender: str) -> str | None:
    cell = summary.cells.get(contender)
    if cell is None:
        return None
    spread = "" if cell.sd is None else f" ± {_fmt(summary.metric, cell.sd, digits=2)}"
    seeds = "" if cell.n == 3 else f", n={cell.n}"
    return f"{_fmt(summary.metric, cell.mean)}{spread} ({cell.wall:.0f} s, CPU {cell.cpu:.0f} s{seeds})"


def _signed(summary: DatasetSummary, peer: str) -> str | None:
    value = summary.better("archsearch", peer)
    if value is None:
        return None
    return f"{value:+.2f} pts" if summary.metric == "accuracy" else f"{value:+.1f}%"


def _results_table(summaries: list[DatasetSummary]) -> str:
    header = [
        "dataset (source; rows)",
        "metric",
        *(LABELS[c] for c in CONTENDERS),
        "archsearch rank",
        "vs RealMLP-TD",
        "vs HGB",
    ]
    rows = [
        [
            f"{s.name} ({s.source}; {s.rows}; {s.n_train:,} train / {s.n_test:,} test)",
            s.metric,
            *(_cell(s, c) for c in CONTENDERS),
            s.rank("archsearch"),
            _signed(s, "realmlp"),
            _signed(s, "hgb"),
        ]
        for s in summaries
    ]
    return markdown_table(header, rows)


def _verdict(summaries: list[DatasetSummary]) -> str:
    """The issue's targets, each checked on the datasets where both contenders ran."""
    lines = []
    for peer in ("realmlp", "hgb"):
        diffs = [(s.name, s.metric, s.better("archsearch", peer)) for s in summaries]
        diffs = [d for d in diffs if d[2] is not None]
        if not diffs:
            continue
        wins = sum(1 for _, _, d in diffs if d >= 0)
        median = statistics.median(d for _, _, d in diffs)
        lines.append(
            f"- archsearch vs {LABELS[peer]}: as good or better on {wins} of {len(diffs)} datasets; median difference "
            f"{median:+.2f} (accuracy points or % of RMSE, positive = archsearch better; target >= 0)."
        )
        if peer == "realmlp":
            short = [f"{n} ({d:+.2f})" for n, m, d in diffs if d < -MAX_SHORTFALL[m]]
            lines.append(
                f"- More than 0.5 accuracy points / 2% RMSE below RealMLP-TD (target: none): "
                f"{', '.join(short) if short else 'none'} ({len(short)} of {len(diffs)} datasets)."
            )
            slower = [
                s.name
                for s in summaries
                if {"realmlp", "archsearch"} <= s.cells.keys() and s.cells["archsearch"].wall > s.cells["realmlp"].wall
            ]
            timed = sum(1 for s in summaries if {"realmlp", "archsearch"} <= s.cells.keys())
            lines.append(
                f"- Wall time above RealMLP-TD's (target: none): {', '.join(slower) if slower else 'none'} "
                f"({len(slower)} of {timed} datasets)."
            )
    ranks = [s.rank("archsearch") for s in summaries if s.rank("archsearch") is not None]
    if ranks:
        lines.append(
            f"- archsearch's rank among the 4 contenders: median {statistics.median(ranks):g} over {len(ranks)} datasets."
        )
    return "\n".join(lines)


def _gap_table(summaries: list[DatasetSummary]) -> str:
    header = [
        "dataset",
        "metric",
        "best val (archsearch's split)",
        "its own test split",
        "held-out test",
        "test - best val (pts; % of RMSE)",
        "timeout s",
        "wall s",
        "trials complete / pruned",
        "n",
    ]
    rows = []
    for s in summaries:
        runs = s.archsearch
        if not runs:
            continue
        mean = lambda key: statistics.fmean(r[key] for r in runs if r.get(key) is not None)  # noqa: E731
        val, test = mean("best_val"), mean("test")
        gap = 100 * (test - val) if s.metric == "accuracy" else 100 * (test - val) / val
        rows.append(
            [
                s.name,
                s.metric,
                _fmt(s.metric, val),
                _fmt(s.metric, mean("best_internal_test")),
                _fmt(s.metric, test),
                f"{gap:+.2f} pts" if s.metric == "accuracy" else f"{gap:+.1f}%",
                f"{mean('budget_seconds'):.0f}",
                f"{mean('wall_seconds'):.0f}",
                f"{statistics.fmean(r['trials'].get('COMPLETE', 0) for r in runs):.0f} / "
                f"{statistics.fmean(r['trials'].get('PRUNED', 0) for r in runs):.0f}",
                len(runs),
            ]
        )
    return markdown_table(header, rows)
