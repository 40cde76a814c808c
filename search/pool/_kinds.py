"""Kinds of job: what the trials of a study are, how many there are, and the objective that trains them.

A study says its kind in the user attribute `archsearch_kind` (a search's studies, made before kinds, have
none). The pool, the workers and the controller ask `job_kind(study)` and never name a kind themselves, so a
new kind of job is one `JobKind` subclass, registered with `register_job_kind` by the package that defines
it (the sensitivity analysis registers its own). A kind instance is sent to spawned workers as it is
(pickled by reference), so their process imports, and registers, its module too.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import optuna
from optuna.trial import FrozenTrial

from archsearch.config import ConfigError, SearchConfig
from archsearch.storage import keys

if TYPE_CHECKING:
    from archsearch.pool._objective import TrialObjective, WorkerContext

__all__ = ["JobKind", "job_kind", "register_job_kind", "trial_label"]


class JobKind(abc.ABC):
    """One kind of study the pool trains.

    Attributes:
        name: The value of the study's `archsearch_kind` attribute ("search" for studies without one).
        reserve_refit: Whether an export's refit follows, so that a timeout keeps time for it
            ([study] reserve_refit).
    """

    name: ClassVar[str]
    reserve_refit: ClassVar[bool] = False

    @abc.abstractmethod
    def objective(self, context: WorkerContext) -> TrialObjective:
        """The objective a worker trains this kind's trials with."""

    def total(self, study: optuna.Study, config: SearchConfig) -> int:
        """The finished trials (complete + pruned) the study's workers run to; by default the config's n_trials."""
        return config.study.trial_total

    def run_namer(self, study: optuna.Study, trials: list[FrozenTrial]) -> Callable[[FrozenTrial], str]:
        """How the status line names a trial; by default its number and hidden widths."""
        return lambda t: f"#{t.number}: {trial_label(t)}"


_KINDS: dict[str, JobKind] = {}


def register_job_kind(kind: JobKind) -> JobKind:
    """Make `kind` the one that trains studies whose `archsearch_kind` is `kind.name`; returns it.

    Raises:
        ValueError: Another kind holds that name.
    """
    held = _KINDS.get(kind.name)
    if held is not None and type(held) is not type(kind):
        raise ValueError(
            f"The job kind {kind.name!r} is registered already (by {type(held).__qualname__}). Got "
            f"{type(kind).__qualname__} instead; give the new kind another name."
        )
    _KINDS[kind.name] = kind
    return kind


def job_kind(study: optuna.Study, given: JobKind | None = None) -> JobKind:
    """The kind of job `study` holds: `given` when it is that kind, else the registered one.

    Raises:
        ConfigError: The study names a kind that no imported package has registered, or `given` is another
            kind (its workers would train the wrong jobs: a search's would sample new trials into an analysis).
    """
    name = study.user_attrs.get(keys.KIND, "search")
    if given is not None:
        if given.name != name:
            raise ConfigError(
                f"Study {study.study_name!r} holds jobs of kind {name!r}, not {given.name!r}; join it with "
                "`archsearch worker` or `archsearch.join_study`, which train each study's own kind of job."
            )
        return given
    if name not in _KINDS:
        raise ConfigError(
            f"Study {study.study_name!r} holds jobs of kind {name!r}, which this archsearch does not know "
            f"(known: {', '.join(sorted(_KINDS))}). Join it with the archsearch version that created it."
        )
    return _KINDS[name]


def trial_label(trial: FrozenTrial) -> str:
    """``linear`` or ``64-32`` (hidden widths from the input side), ``?`` before the trial wrote them."""
    widths = trial.user_attrs.get(keys.WIDTHS)
    if widths is None:
        return "?"
    return "-".join(str(w) for w in widths) if widths else "linear"
