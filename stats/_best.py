"""The best trial against the knee and the linear baseline, on validation and on test, with the rows each
number rests on: one result that the search's last lines, `archsearch status`, the report and the dashboard
note all print, so that none of them calls the best "better" from validation alone.

The best trial is the best of many on validation, so its validation value is optimistic; on a small table
the test split can rank a smaller trial (the knee, the linear model) above it. `BestComparison.verdict`
says so in one sentence, with what to do.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Mapping

import optuna
import pandas as pd

from archsearch.stats._analysis import StudyData, find_knee, knee_tolerance_for, linear_baseline, load_study_data
from archsearch.stats._format import format_number, plural
from archsearch.storage import keys, stored_value

__all__ = [
    "ROLE_BEST",
    "ROLE_KNEE",
    "ROLE_LINEAR",
    "BestComparison",
    "Contender",
    "best_comparison",
    "compare_best",
    "default_knee_tolerance",
]

ROLE_BEST, ROLE_KNEE, ROLE_LINEAR = "best", "knee", "linear baseline"
# The [data] folds the advice suggests when a study has none: the usual choice, five networks a trial. Folds make
# the comparison trustworthy (every train + validation row validates); at equal trials they did not pick better
# networks on test (BENCHMARKS.md, issue #23 section), so the advice leads with the smaller trial.
_SUGGESTED_FOLDS = 5


@dataclass(frozen=True)
class Contender:
    """One trial of the comparison.

    Attributes:
        role: `ROLE_BEST`, `ROLE_KNEE` or `ROLE_LINEAR`.
        number: Trial number.
        value: Validation metric (the mean over folds with [data] folds).
        test: Test metric; NaN when the trial stored none.
        n_params: Trainable parameters; NaN when unknown.
        depth: Hidden layers; NaN when unknown.
        widths: Hidden widths, or None when unknown.
        dropouts: Dropout after each hidden layer, or None when unknown.
    """

    role: str
    number: int
    value: float
    test: float
    n_params: float
    depth: float
    widths: tuple[int, ...] | None
    dropouts: tuple[float, ...] | None

    @classmethod
    def from_row(cls, role: str, row: pd.Series) -> Contender:
        widths = tuple(int(w) for w in row["widths"]) if row["widths"] is not None else None
        dropouts = tuple(float(d) for d in row["dropouts"]) if row["dropouts"] is not None else None
        return cls(
            role,
            int(row["number"]),
            float(row["value"]),
            float(row["test_value"]),
            float(row["n_params"]),
            float(row["depth"]),
            widths,
            dropouts,
        )


@dataclass(frozen=True)
class BestComparison:
    """The best trial, the knee and the linear baseline on validation and test (the best first).

    Attributes:
        metric: The study's metric.
        maximize: Whether higher is better.
        n_trials: Finished trials the best was chosen from.
        n_val: Rows each validation value rests on (train + validation rows with folds); None when unknown.
        n_test: Test rows; None when unknown.
        folds: The study's [data] folds, None without.
        knee_tolerance: The knee's tolerance, in metric units.
        contenders: The best, then the knee and the linear baseline where they are other trials.
    """

    metric: str
    maximize: bool
    n_trials: int
    n_val: int | None
    n_test: int | None
    folds: int | None
    knee_tolerance: float
    contenders: tuple[Contender, ...]

    @property
    def best(self) -> Contender:
        return self.contenders[0]

    def get(self, role: str) -> Contender | None:
        """The contender in `role`, or None when the study has none (or it is the best trial itself)."""
        return next((c for c in self.contenders if c.role == role), None)

    def _gain(self, a: float, b: float) -> float:
        """How much better `a` is than `b` (negative: worse)."""
        return a - b if self.maximize else b - a

    def val_rows(self) -> str:
        """``89 rows`` or ``442 rows (5 folds)``; ``rows unknown`` for a study that does not say."""
        if self.n_val is None:
            return "rows unknown"
        return plural(self.n_val, "row") + (f" ({self.folds} folds)" if self.folds else "")

    def test_rows(self) -> str:
        return plural(self.n_test, "row") if self.n_test is not None else "rows unknown"

    def gap_words(self, other: Contender) -> str:
        """``5.0700 better on validation (89 rows) and 3.0300 worse on test (89 rows)`` for the best against `other`."""
        parts = []
        for name, a, b, rows in (
            ("validation", self.best.value, other.value, self.val_rows()),
            ("test", self.best.test, other.test, self.test_rows()),
        ):
            gain = self._gain(a, b)
            if not math.isfinite(gain):
                parts.append(f"not comparable on {name} (no value stored)")
            elif format_number(gain) == format_number(0.0):
                parts.append(f"level on {name} ({rows})")
            else:
                parts.append(f"{format_number(abs(gain))} {'better' if gain > 0 else 'worse'} on {name} ({rows})")
        return " and ".join(parts)

    def beaten_on_test(self) -> tuple[Contender, ...]:
        """The knee and linear baseline that score better than the best on test, though not on validation."""
        # NaN (no test value stored) compares False, so such a trial is never said to beat the best.
        return tuple(c for c in self.contenders[1:] if self._gain(c.test, self.best.test) > 0)

    def verdict(self) -> str | None:
        """One sentence when test disagrees with validation, with what to do; None when it agrees."""
        beaten = self.beaten_on_test()
        if not beaten:
            return None
        # The knee may be the linear model itself: one trial, named once with both roles.
        roles = {c.number: [] for c in beaten}
        for c in beaten:
            roles[c.number].append(c.role)
        named = {c.number: c for c in beaten}
        who = " and ".join(f"the {' and '.join(roles[n])} (trial {n}, {format_number(named[n].test)})" for n in roles)
        verb = "score" if len(roles) > 1 else "scores"
        pick = next((c for c in beaten if c.role == ROLE_KNEE), beaten[0])
        confirm = (
            "more rows confirm it"
            if self.folds
            else f"more rows, or `[data] folds = {_SUGGESTED_FOLDS}` (validating on every train + validation row), confirm it"
        )
        return (
            f"Test disagrees with validation: {who} {verb} better on test {self.metric} than the best trial "
            f"{self.best.number} ({format_number(self.best.test)}, {self.test_rows()}), so the best's lead on "
            f"validation ({self.val_rows()}) is partly the luck of picking the best of {plural(self.n_trials, 'trial')}: "
            f"prefer the smaller {pick.role} (`archsearch export --trial {pick.number}`) and trust the lead only once "
            f"{confirm}."
        )

    def frame(self) -> pd.DataFrame:
        """One row per contender: role, trial, depth, widths, dropouts, params, validation and test metric."""
        rows = [
            {
                "role": _role_label(c.role, self.knee_tolerance),
                "trial": c.number,
                "depth": int(c.depth) if math.isfinite(c.depth) else None,
                "widths": list(c.widths) if c.widths is not None else None,
                "dropouts": [round(d, 3) for d in c.dropouts] if c.dropouts is not None else None,
                "params": int(c.n_params) if math.isfinite(c.n_params) else None,
                f"val {self.metric}": c.value,
                f"test {self.metric}": c.test,
            }
            for c in self.contenders
        ]
        return pd.DataFrame(rows)

    def lines(self, width: int = 78) -> list[str]:
        """The comparison for a terminal: a small table (some 60 columns) and, if any, the verdict wrapped to `width`."""
        head = ("", "trial", "params", f"val {self.metric}", f"test {self.metric}")
        body = [
            (
                c.role,
                str(c.number),
                f"{int(c.n_params):,}" if math.isfinite(c.n_params) else "?",
                format_number(c.value),
                format_number(c.test),
            )
            for c in self.contenders
        ]
        body.append(("rows", "", "", self.val_rows(), self.test_rows()))
        widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
        lines = [
            "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in (head, *body)
        ]
        verdict = self.verdict()
        wrapped = _wrap(verdict, width) if verdict else []
        return [line.rstrip() for line in lines] + wrapped


def _wrap(text: str, width: int) -> list[str]:
    """`text` wrapped to `width`, never inside a `code span` (a command split over two lines reads as two)."""
    glued = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    lines = textwrap.wrap(glued, width=max(width, 40), break_on_hyphens=False, break_long_words=False)
    return [line.replace("\0", " ") for line in lines]


def _role_label(role: str, knee_tolerance: float) -> str:
    return f"knee (within {knee_tolerance:g})" if role == ROLE_KNEE else role


def best_comparison(
    data: StudyData,
    knee_tolerance: float,
    *,
    n_val: int | None = None,
    n_test: int | None = None,
    folds: int | None = None,
) -> BestComparison | None:
    """Compare the best finished trial with the knee and the linear baseline; None when no trial finished.

    Args:
        data: The flattened study.
        knee_tolerance: The knee's tolerance, in metric units.
        n_val: Validation rows of each value (train + validation rows when the study used folds).
        n_test: Test rows.
        folds: The study's [data] folds, or None.
    """
    done = data.complete
    if done.empty:
        return None
    # A trial over [study] max_latency_ms is never the best (find_knee skips it too).
    eligible = data.feasible if not data.feasible.empty else done
    best = eligible.sort_values(["score", "number"], ascending=[False, True]).iloc[0]
    contenders = [Contender.from_row(ROLE_BEST, best)]
    knee = find_knee(data, knee_tolerance)
    if knee is not None and knee.knee != knee.best:
        contenders.append(Contender.from_row(ROLE_KNEE, done[done["number"] == knee.knee].iloc[0]))
    linear = linear_baseline(data)
    if linear is not None and int(linear["number"]) != int(best["number"]):
        contenders.append(Contender.from_row(ROLE_LINEAR, linear))
    return BestComparison(
        data.metric, data.maximize, len(done), n_val, n_test, folds, knee_tolerance, tuple(contenders)
    )


def default_knee_tolerance(attrs: Mapping[str, Any], metric: str) -> float:
    """The knee's tolerance for a study's user attributes: 0.005, or for RMSE 0.005 x the target's scale."""
    preprocessing = stored_value(attrs, keys.PREPROCESSING) or {}
    scale = preprocessing.get("target_scale") if preprocessing.get("task") == "regression" else None
    return knee_tolerance_for(metric, scale)


def compare_best(
    study: optuna.Study, *, knee_tolerance: float | None = None, data: StudyData | None = None
) -> BestComparison | None:
    """`best_comparison` of a stored study, with its row counts and folds read from the study.

    Example:
        >>> import optuna
        >>> study = optuna.load_study(study_name="demo", storage="sqlite:///demo.db")  # doctest: +SKIP
        >>> print("\\n".join(compare_best(study).lines()))  # doctest: +SKIP
    """
    data = load_study_data(study) if data is None else data
    attrs = study.user_attrs
    if knee_tolerance is None:
        knee_tolerance = default_knee_tolerance(attrs, data.metric)
    sizes = attrs.get(keys.DATA) or {}
    folds = (attrs.get(keys.CONFIG) or {}).get("data", {}).get("folds")
    n_val, n_test = sizes.get("n_val"), sizes.get("n_test")
    if folds and n_val is not None and sizes.get("n_train") is not None:
        # Every train + validation row is validated once, by the fold that held it out.
        n_val = n_val + sizes["n_train"]
    return best_comparison(data, knee_tolerance, n_val=n_val, n_test=n_test, folds=folds)
