"""Export a trial's network, or an ensemble, as a folder that loads without archsearch (torch.export) or with it.

`export_best` is a plan, then its execution: `_plan.py` checks the arguments and decides which trials and
seeds ship (nothing trains before the plan stands), `_greedy.py` runs greedy ensemble selection around the
chosen trial (`_selection.py` is the algorithm), `_members.py` reads or trains each member's weights
(`_refit.py` the refit), and `_write.py` writes the folder; `_describe.py` prints what was written.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from archsearch.encoded import fetch_encoded
from archsearch.export._budget import ExportBudget
from archsearch.export._describe import describe_export
from archsearch.export._greedy import select_greedy
from archsearch.export._members import artifact_dir
from archsearch.export._plan import ExportPlan, plan_export
from archsearch.export._write import write_greedy, write_members
from archsearch.trainers import ExportError

__all__ = ["ExportError", "describe_export", "export_best", "load_model"]


def export_best(
    storage: str,
    study_name: str,
    out: str | Path,
    *,
    trial: int | None = None,
    refit: bool = True,
    ensemble: int | None = None,
    ensemble_seeds: int | None = None,
    greedy_ensemble: bool | None = None,
    clamp: bool | None = None,
    artifacts: str | Path | None = None,
    retrain: bool | None = None,
    max_params: int | None = None,
    max_flops: int | None = None,
    max_latency_ms: float | None = None,
) -> Path:
    """Write `architecture.json`, `model.pt` and `model.pt2` for the best (or a given) completed trial.

    By default the chosen architecture is trained again ("refit") on train + validation rows with its
    trial's hyperparameters and seed, for the epochs early stopping chose; the test split stays unseen,
    and the test metrics in `architecture.json` are the shipped model's. `architecture.json` says which
    rows the shipped model saw (`metadata.training_rows`). A study searched with class weights ships
    probabilities of the data's class frequencies and the class-weighted decision (its `calibration`,
    `archsearch.trainers.fit_calibration`).

    Args:
        storage: The study's storage URL.
        study_name: The study's name.
        out: Folder to write (created; existing files in it are overwritten).
        trial: Trial number; default: the best trial, the smallest network among trials that tie for best.
        refit: Train on train + validation rows; False ships the weights the search stored for the trial.
        ensemble: Ship the mean prediction of this many best trials (>= 2) as one program.
        ensemble_seeds: Ship the mean prediction of this many seeds of the chosen trial; the first is the
            trial's own seed. Default: the study's `[export] ensemble_seeds` (1, one network, unless set).
        greedy_ensemble: Add to the best trial (refit or not, as `refit` says) the stored networks of other
            complete trials that greedy ensemble selection picks on the validation split, weighted by how
            often it picked them; they ship as the search trained them, so this trains nothing more. When
            nothing improves the best trial's validation metric, the best trial ships alone. Default: the
            study's `[export] greedy_ensemble`, which `trial`, `ensemble` and `ensemble_seeds` > 1 turn off.
        clamp: Regression: clamp the shipped predictions to the range of the targets the model trained on
            (recorded as `preprocessing.target_range`). Default: the study's `[export] clamp` (true). A
            `--no-refit` export of a single network without the search's data on this machine cannot clamp.
        artifacts: Folder of the trials' weights, when the study's config does not say where it is.
        retrain: Deprecated alias of `refit`.
        max_params, max_flops, max_latency_ms: A budget on what ships, summed over its members (an ensemble
            counts them all): the best trial within it is chosen, and the greedy ensemble adds only members
            that keep the sum within it; `architecture.json`'s `metadata.size` says what was counted.

    Returns:
        The export folder.

    Example:
        >>> export_best("sqlite:///archsearch.db", "digits", "digits-model", ensemble=5)  # doctest: +SKIP
        >>> model = archsearch.load_model("digits-model")  # doctest: +SKIP
    """
    plan = plan_export(
        storage,
        study_name,
        out,
        trial=trial,
        refit=_refit(refit, retrain),
        ensemble=ensemble,
        ensemble_seeds=ensemble_seeds,
        greedy_ensemble=greedy_ensemble,
        clamp=clamp,
        artifacts=artifacts,
        budget=ExportBudget(max_params=max_params, max_flops=max_flops, max_latency_ms=max_latency_ms),
    )
    return _execute(plan, out)


def _refit(refit: bool, retrain: bool | None) -> bool:
    """`refit`, or the deprecated `retrain` where a caller still passes it (with a warning)."""
    if retrain is None:
        return refit
    warnings.warn(
        "export_best's 'retrain' is deprecated; it means 'refit', which is now on by default.",
        DeprecationWarning,
        stacklevel=3,
    )
    return retrain


def _execute(plan: ExportPlan, out: str | Path) -> Path:
    """Carry out a plan that stands: the encoded vectors, the greedy selection, then the folder."""
    # The vectors the study trained on, from its artifact store, when this machine's cache lacks them.
    fetch_encoded(plan.study, plan.config.data, artifact_dir(plan))
    greedy = select_greedy(plan) if plan.greedy else None
    if greedy is not None and greedy.members:
        return write_greedy(plan, out, greedy)
    return write_members(plan, out, greedy)


def load_model(path: str | Path):
    """Load an exported folder as a predictor of raw rows (labels, probabilities or values)."""
    from archsearch.trainers import load_model as _load

    return _load(path)
