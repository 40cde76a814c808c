"""What a sensitivity analysis found: per centre its noise floor, per neighbour its paired effect, in words.

The table, the summary and the figures' captions are all rendered from these typed results: a centre's
verdicts in words come from one function, `centre_findings`, whose sentence the summary prints and the
forest plot's caption repeats (through ``to_dict()["centres"][i]["findings"]``), so they cannot disagree.
The advice on seeds is one figure for the analysis (`SensitivityResult.advised_repeats`), and layers are
numbered from 1, next to the input, as in the search's report (the stored ``layer`` index stays 0-based).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from archsearch.sensitivity._jobs import Centre, job_id
from archsearch.spaces import EMBEDDING_DIM, Neighbour
from archsearch.stats import (
    PairedEffect,
    can_reach_significance,
    compare_to_centre,
    fewest_seeds,
    format_number,
    format_p,
    minimum_detectable_difference,
    noise_floor,
    paired_differences,
    plural,
)

if TYPE_CHECKING:
    from archsearch.dashboards import Report

__all__ = ["CentreResult", "NeighbourResult", "SensitivityResult", "centre_findings", "compare_centre", "summarize"]

# Said once per table and summary: which test the interval and p come from, and how layers are numbered.
LAYERS_NOTE = "Layers are numbered from the input: layer 1 is next to the input."
TEST_NOTE = (
    "95% CI and p: Wilcoxon signed-rank test of the paired differences, before Holm's correction (the interval "
    "holds the shifts the test does not reject, so it excludes 0 exactly when p < 0.05, and has no bound with 5 "
    "seeds or fewer); p (Holm) decides better or worse."
)

_STEP_LABEL = re.compile(r"\(([+-][^)]*)\)$")  # "(+1)", "(-50%)" at the end of a width change
_GROUPS = {
    "centre": "centre",
    "remove_layer": "-1 layer",
    "add_layer": "+1 layer",
    "linear": "linear model",
    "hidden_layer": "one hidden layer",
    "uniform": "uniform widths",
    "no_dropout": "no dropout",
}


@dataclass(frozen=True)
class NeighbourResult:
    """One neighbour of a centre and how it compares with the centre, seed by seed.

    Attributes:
        kind: One of `archsearch.spaces.NEIGHBOUR_KINDS`.
        change: What changed, in words: ``"layer 1: 64 -> 65 (+1)"`` (layer 1 is next to the input).
        group: The change without its layer, to compare centres: ``"+1 neuron"``, ``"-50%"``, ``"-1 layer"``.
        key: `archsearch.spaces.architecture_key` of the neighbour.
        layer: Index of the layer resized, removed or copied, from 0 (``change`` says layer 1); None for
            whole-network changes.
        widths: Hidden widths of the neighbour.
        dropouts: Dropout of each hidden layer.
        delta_units: Hidden units minus the centre's.
        n_params: Trainable parameters.
        delta_params: Parameters minus the centre's.
        values: Best validation metric of each finished run, by seed.
        diverged: Runs that diverged; they are left out of the comparison.
        effect: Paired comparison with the centre; None when no seed finished for both.
    """

    kind: str
    change: str
    group: str
    key: str
    layer: int | None
    widths: tuple[int, ...]
    dropouts: tuple[float, ...]
    delta_units: int
    n_params: int
    delta_params: int
    values: dict[int, float]
    diverged: int
    effect: PairedEffect | None


@dataclass(frozen=True)
class CentreResult:
    """A centre trial, its seed-to-seed noise and its neighbours.

    Attributes:
        trial: Trial number in the searched study.
        widths: Hidden widths of the centre.
        dropouts: Dropout of each hidden layer.
        activation: Activation of the hidden layers.
        n_params: Trainable parameters.
        hyperparameters: ``lr``, ``weight_decay``, ``batch_size``, ``optimizer`` every run of this centre used.
        values: Best validation metric of the centre's runs, by seed.
        diverged: Centre runs that diverged.
        noise_floor: Seed-to-seed standard deviation of ``values``; NaN with fewer than 2 runs.
        margin: Equivalence margin of the neighbours' comparisons: the ``margin`` given to the analysis,
            else ``noise_floor``, and never below ``resolution``.
        margin_given: Whether a margin was given rather than the centre's seed-to-seed sd.
        minimum_detectable_difference: Smallest mean difference found with 80% power at this number of
            seeds, at Holm's strictest level ``alpha / n_tests``, with the median seed-to-seed spread of the
            neighbours' paired differences; NaN when no neighbour has 2 paired runs.
        n_tests: Neighbours compared together (Holm's family).
        can_reach_significance: Whether this many seeds can make any neighbour significant at all.
        neighbours: The neighbours, in the order of `archsearch.spaces.neighbourhood`.
        embedding: The centre's numeric-feature embedding, which its neighbours with hidden layers share;
            "none" without one.
        embedding_dim: Its values per feature (unused with "none").
    """

    trial: int
    widths: tuple[int, ...]
    dropouts: tuple[float, ...]
    activation: str
    n_params: int
    hyperparameters: dict[str, Any]
    values: dict[int, float]
    diverged: int
    noise_floor: float
    margin: float
    margin_given: bool
    minimum_detectable_difference: float
    n_tests: int
    can_reach_significance: bool
    neighbours: tuple[NeighbourResult, ...]
    embedding: str = "none"
    embedding_dim: int = EMBEDDING_DIM
    resolution: float = 0.0  # the metric's smallest step (one validation row for accuracy), 0 when continuous

    @property
    def margin_source(self) -> str:
        """Where the margin comes from, in words: the given margin, the centre's sd, or one validation row."""
        base = "the given margin" if self.margin_given else "the centre's seed-to-seed sd"
        if self.resolution > 0 and self.margin == self.resolution:
            return f"one validation row of {round(1 / self.resolution):,}, more than {base}"
        return base

    @property
    def mean(self) -> float:
        """Mean of ``values``; NaN when no run finished."""
        return statistics.fmean(self.values.values()) if self.values else math.nan


@dataclass
class SensitivityResult:
    """What `run_sensitivity` found: per centre, its noise floor and each neighbour's paired effect.

    Attributes:
        study_name: The searched study.
        companion_study: The study holding the runs (``<study_name>.sensitivity``).
        metric: The validation metric compared.
        direction: ``"maximize"`` or ``"minimize"``.
        alpha: Family-wise error rate per centre.
        margin: The equivalence margin given to the analysis; None when each centre's sd was used.
        seeds: Training seeds of every architecture.
        steps: Width steps besides +-1 neuron.
        centres: One result per centre, by increasing size when several.
        runs_planned: Runs this analysis needs (architectures x seeds).
        runs_trained: Of those, runs trained by this call.
        runs_reused: Runs that an earlier call had finished.
        runs_diverged: Finished runs that diverged.
        runs_missing: Planned runs without a finished trial (their runs failed); rerun to retry them.
        warnings: Sentences about what this analysis cannot show, said before training.
        summary: The findings in words (Markdown headings and bullets).
    """

    study_name: str
    companion_study: str
    metric: str
    direction: str
    alpha: float
    margin: float | None
    seeds: list[int]
    steps: list[float]
    centres: list[CentreResult]
    runs_planned: int
    runs_trained: int
    runs_reused: int
    runs_diverged: int
    runs_missing: int
    warnings: list[str]
    summary: str

    @property
    def advised_repeats(self) -> int | None:
        """The one figure of seeds to rerun with (``--repeats``); None when nothing is inconclusive with a spread.

        The median of the seeds each inconclusive change needs at the spread seen (so about half of them would
        resolve), and never below the fewest that let Holm's correction call any change better or worse.
        """
        needed = [
            n.effect.seeds_needed
            for c in self.centres
            for n in c.neighbours
            if n.effect is not None and n.effect.verdict == "inconclusive" and n.effect.seeds_needed is not None
        ]
        if not needed:
            return None
        floors = [fewest_seeds(c.n_tests, self.alpha) for c in self.centres if c.n_tests]
        return max([math.ceil(statistics.median(needed)), *floors])

    def advice(self) -> str | None:
        """The advice as the summary and the table print it, with its figure and n; None without one."""
        figure = self.advised_repeats
        if figure is None:
            return None
        inconclusive = sum(
            n.effect is not None and n.effect.verdict == "inconclusive" for c in self.centres for n in c.neighbours
        )
        which = "it" if inconclusive == 1 else f"about half of the {inconclusive:,} inconclusive changes"
        return f"Advice: rerun with --repeats {figure}; at the spread seen, that would resolve {which}."

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (NaN becomes None, seeds become string keys)."""
        return _json_safe(
            {
                "study": self.study_name,
                "companion_study": self.companion_study,
                "metric": self.metric,
                "direction": self.direction,
                "alpha": self.alpha,
                "margin": self.margin,
                "seeds": self.seeds,
                "steps": self.steps,
                "runs": {
                    "planned": self.runs_planned,
                    "trained": self.runs_trained,
                    "reused": self.runs_reused,
                    "diverged": self.runs_diverged,
                    "missing": self.runs_missing,
                },
                "warnings": self.warnings,
                "advised_repeats": self.advised_repeats,
                "summary": self.summary,
                "centres": [_centre_dict(c, self.metric, self.direction) for c in self.centres],
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        """Return `to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self) -> str:
        """Return the effects as a plain-text table, one block per centre, for the terminal."""
        return _table(self)

    def report(self) -> Report:
        """Build the figures (forest plot, width curves, effects across centre sizes) and the summary."""
        from archsearch.dashboards import build_sensitivity_report

        return build_sensitivity_report(self.to_dict())


def compare_centre(
    centre: Centre,
    seeds: list[int],
    runs: dict[str, FrozenTrial],
    direction: str,
    alpha: float,
    n_outputs: int,
    margin: float | None = None,
    *,
    resolution: float = 0.0,
) -> CentreResult:
    """Compare each neighbour of one centre with it over the seeds both finished, Holm-corrected together.

    ``margin`` is the equivalence margin in metric units; None uses the centre's seed-to-seed sd; either is
    raised to ``resolution``, the metric's smallest step (`archsearch.stats.metric_resolution`). Parameters
    are counted at the centre's input width (`Centre.n_inputs`, its blocks' width).
    """
    values, diverged = _finished_values(centre, seeds, runs)
    centre_key, others = centre.neighbours[0].key, centre.neighbours[1:]
    centre_values = values[centre_key]
    comparable = {n.key: values[n.key] for n in others if set(values[n.key]) & set(centre_values)}
    effects = compare_to_centre(centre_values, comparable, direction, alpha, margin, resolution) if comparable else {}
    # The typical seed-to-seed spread of the paired differences sizes the smallest detectable difference.
    differences = [paired_differences(centre_values, v).tolist() for v in comparable.values()]
    spreads = [statistics.stdev(d) for d in differences if len(d) >= 2]
    n_tests = len(others)
    mdd = math.nan
    if spreads and n_tests:
        mdd = minimum_detectable_difference(statistics.median(spreads), len(seeds), alpha / n_tests)
    n_inputs, n_numeric = centre.n_inputs, centre.n_numeric
    centre_params = centre.architecture.n_params(n_inputs, n_outputs, n_numeric=n_numeric)
    neighbours = []
    for n in others:
        architecture = n.architecture
        n_params = architecture.n_params(n_inputs, n_outputs, n_numeric=n_numeric)
        neighbours.append(
            NeighbourResult(
                kind=n.kind,
                change=n.change,
                group=_group(n),
                key=n.key,
                layer=n.layer,
                widths=architecture.widths,
                dropouts=architecture.dropouts,
                delta_units=n.delta_units,
                n_params=n_params,
                delta_params=n_params - centre_params,
                values=values[n.key],
                diverged=diverged[n.key],
                effect=effects.get(n.key),
            )
        )
    architecture = centre.architecture
    floor = noise_floor(centre_values) if len(centre_values) >= 2 else math.nan
    return CentreResult(
        trial=centre.trial,
        widths=architecture.widths,
        dropouts=architecture.dropouts,
        activation=architecture.activation,
        n_params=centre_params,
        hyperparameters=centre.hyperparameters.to_dict(),
        values=centre_values,
        diverged=diverged[centre_key],
        noise_floor=floor,
        margin=_raised(floor if margin is None else margin, resolution),
        margin_given=margin is not None,
        minimum_detectable_difference=mdd,
        n_tests=n_tests,
        can_reach_significance=n_tests > 0 and can_reach_significance(len(seeds), n_tests, alpha),
        neighbours=tuple(neighbours),
        embedding=architecture.embedding,
        embedding_dim=architecture.embedding_dim,
        resolution=resolution,
    )


def _finished_values(
    centre: Centre, seeds: list[int], runs: dict[str, FrozenTrial]
) -> tuple[dict[str, dict[int, float]], dict[str, int]]:
    """Per architecture key, the values of its completed runs by seed, and how many of its runs diverged."""
    values: dict[str, dict[int, float]] = {}
    diverged: dict[str, int] = {}
    for neighbour in centre.neighbours:
        found = [(seed, runs.get(job_id(centre.trial, neighbour.key, seed))) for seed in seeds]
        values[neighbour.key] = {
            seed: run.value for seed, run in found if run is not None and run.state == TrialState.COMPLETE
        }
        diverged[neighbour.key] = sum(run is not None and run.state == TrialState.PRUNED for _, run in found)
    return values, diverged


def _raised(margin: float, resolution: float) -> float:
    """The margin, raised to the metric's resolution as `compare_to_centre` raises it; NaN stays NaN."""
    return max(margin, resolution) if math.isfinite(margin) else margin


def _group(neighbour: Neighbour) -> str:
    """The change of a neighbour without its layer: "+1 neuron", "-2 neurons", "-50%", "-1 layer"."""
    if neighbour.kind != "width":
        return _GROUPS[neighbour.kind]
    label = _STEP_LABEL.search(neighbour.change).group(1)
    if label.endswith("%"):
        return label
    count = int(label)
    return f"{count:+d} neuron{'' if abs(count) == 1 else 's'}"


def _centre_dict(centre: CentreResult, metric: str, direction: str) -> dict[str, Any]:
    return {
        "trial": centre.trial,
        "widths": list(centre.widths),
        "dropouts": list(centre.dropouts),
        "activation": centre.activation,
        **(
            {"embedding": centre.embedding, "embedding_dim": centre.embedding_dim} if centre.embedding != "none" else {}
        ),
        "n_params": centre.n_params,
        "hyperparameters": centre.hyperparameters,
        "values": {str(seed): v for seed, v in centre.values.items()},
        "mean": centre.mean,
        "diverged": centre.diverged,
        "noise_floor": centre.noise_floor,
        "margin": centre.margin,
        "margin_given": centre.margin_given,
        "margin_source": centre.margin_source,
        "resolution": centre.resolution,
        "findings": centre_findings(centre, metric, direction),
        "minimum_detectable_difference": centre.minimum_detectable_difference,
        "n_tests": centre.n_tests,
        "can_reach_significance": centre.can_reach_significance,
        "neighbours": [
            {
                "kind": n.kind,
                "change": n.change,
                "group": n.group,
                "key": n.key,
                "layer": n.layer,
                "widths": list(n.widths),
                "dropouts": list(n.dropouts),
                "delta_units": n.delta_units,
                "n_params": n.n_params,
                "delta_params": n.delta_params,
                "values": {str(seed): v for seed, v in n.values.items()},
                "diverged": n.diverged,
                "effect": None
                if n.effect is None
                else {
                    "mean": n.effect.mean,
                    "ci_low": n.effect.ci_low,
                    "ci_high": n.effect.ci_high,
                    "n": n.effect.n,
                    "p_value": n.effect.p_value,
                    "p_adjusted": n.effect.p_adjusted,
                    "margin": n.effect.margin,
                    "p_equivalence": n.effect.p_equivalence,
                    "verdict": n.effect.verdict,
                    "seeds_needed": n.effect.seeds_needed,
                    "n_higher": n.effect.n_higher,
                    "n_lower": n.effect.n_lower,
                    "label": n.effect.label,
                },
            }
            for n in centre.neighbours
        ],
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _describe(centre: CentreResult) -> str:
    """``"trial 3 (1 layer of 64, relu; 451 params)"``, ``"trial 0 (linear model; 650 params)"``, and
    ``"trial 5 (1 layer of 64, relu, pl embedding of 8; 1,163 params)"``."""
    if not centre.widths:
        return f"trial {centre.trial} (linear model; {centre.n_params:,} params)"
    layers = f"{plural(len(centre.widths), 'layer')} of {', '.join(map(str, centre.widths))}, {centre.activation}"
    if centre.embedding != "none":
        layers += f", {centre.embedding} embedding of {centre.embedding_dim}"
    return f"trial {centre.trial} ({layers}; {centre.n_params:,} params)"


def centre_findings(centre: CentreResult, metric: str, direction: str) -> str:
    """Say in one paragraph what the comparisons around a centre show, verdict by verdict, each with its n.

    The summary prints this paragraph and the forest plot's caption repeats it, so the two cannot
    disagree. A plateau is claimed only when every +-1 neuron change was shown equivalent.

    Example:
        >>> print(centre_findings(result.centres[0], "accuracy", "maximize"))  # doctest: +SKIP
        Around trial 16 (n=3 seeds per architecture): worse: remove layer 1 (-0.0232, 95% CI ...
    """
    compared = [n for n in centre.neighbours if n.effect is not None]
    seeds = max((n.effect.n for n in compared), default=0)
    head = f"Around trial {centre.trial} (n={seeds} paired {'seed' if seeds == 1 else 'seeds'} per architecture"
    if not compared:
        return f"{head}): no neighbour finished a run with the centre's seeds, so nothing is compared."
    sentences = [
        f"{head}, {plural(len(compared), 'change')} compared, {'higher' if direction == 'maximize' else 'lower'} {metric} is better)."
    ]
    if not centre.can_reach_significance:
        sentences.append(
            f"With {plural(seeds, 'seed')}, Holm's correction over {plural(centre.n_tests, 'change')} lets no change be "
            "called better or worse; only equivalence can be shown."
        )
    by_verdict = {
        v: [n for n in compared if n.effect.verdict == v] for v in ("worse", "better", "equivalent", "inconclusive")
    }
    for verdict in ("worse", "better"):
        listed = "; ".join(
            f"{n.change} ({format_number(n.effect.mean, signed=True)}, 95% CI {_bound(n.effect.ci_low)} "
            f"to {_bound(n.effect.ci_high)})"
            for n in by_verdict[verdict]
        )
        sentences.append(f"{verdict.capitalize()}: {listed or 'none'}.")
    margin = f"± {format_number(centre.margin)} ({centre.margin_source})"
    equivalent = by_verdict["equivalent"]
    sentences.append(
        f"Equivalent within {margin}: "
        + (
            f"{plural(len(equivalent), 'change')} ({'; '.join(n.change for n in equivalent)})."
            if equivalent
            else "none."
        )
    )
    inconclusive = by_verdict["inconclusive"]
    if inconclusive:
        # Each with its direction; how many seeds would resolve them is the analysis's one advice figure.
        listed = "; ".join(f"{n.change}, {n.effect.direction}" for n in inconclusive)
        sentences.append(f"Inconclusive at n={seeds}: {plural(len(inconclusive), 'change')} ({listed}).")
    one_neuron = [n for n in compared if n.group in ("+1 neuron", "-1 neuron")]
    if one_neuron and all(n.effect.verdict == "equivalent" for n in one_neuron):
        sentences.append("Every +-1 neuron change is equivalent to the centre: it sits on a plateau of width.")
    return " ".join(sentences)


def summarize(result: SensitivityResult) -> str:
    """The findings in words: a heading, the runs, and per centre its mean, noise and `centre_findings`."""
    better = "higher" if result.direction == "maximize" else "lower"
    n_arch = sum(len(c.neighbours) + 1 for c in result.centres)
    lines = [
        f"## Sensitivity of study '{result.study_name}': validation {result.metric}, {better} is better",
        "",
        f"{LAYERS_NOTE} {TEST_NOTE}",
        "",
        f"- Runs: {result.runs_planned:,} ({plural(n_arch, 'architecture')} x {plural(len(result.seeds), 'seed')}, "
        f"paired by seed); {result.runs_trained:,} trained now, {result.runs_reused:,} reused, "
        f"{result.runs_diverged:,} diverged"
        + (f", {result.runs_missing:,} failed (rerun to retry them)." if result.runs_missing else "."),
    ]
    for centre in result.centres:
        lines.append(
            f"- Centre {_describe(centre)}: {_centre_numbers(centre, result.metric)}; with {plural(len(result.seeds), 'seed')} "
            f"a difference below {format_number(centre.minimum_detectable_difference)} is unlikely to be detected."
        )
        lines.append(f"- {centre_findings(centre, result.metric, result.direction)}")
    # The warnings said before training are not repeated: each centre's findings say what its seeds cannot
    # show, and the advice below is the one figure to act on.
    advice = result.advice()
    if advice:
        lines.append(f"- {advice}")
    return "\n".join(lines)


def _centre_numbers(centre: CentreResult, metric: str) -> str:
    n = len(centre.values)
    return (
        f"val {metric} {format_number(centre.mean)} (mean of n={n}), seed-to-seed sd {format_number(centre.noise_floor)} "
        f"(n={n}), equivalence margin ± {format_number(centre.margin)}"
        + (f" (one validation row of {round(1 / centre.resolution):,})" if centre.margin == centre.resolution else "")
    )


def _table(result: SensitivityResult) -> str:
    blocks = []
    for centre in result.centres:
        head = (
            f"Centre {_describe(centre)}: {_centre_numbers(centre, result.metric)}, detectable difference "
            f"{format_number(centre.minimum_detectable_difference)} at {plural(len(result.seeds), 'seed')}"
        )
        width = max([len("change"), *(len(n.change) for n in centre.neighbours)])
        rows = [
            f"  {'change':<{width}}  {'params':>8}  {'mean diff':>9}  {'95% CI':^21}  {'p':>8}  {'p (Holm)':>8}  "
            f"{'n':>3}  verdict"
        ]
        for n in sorted(centre.neighbours, key=lambda n: (n.delta_params, n.change)):
            e = n.effect
            if e is None:
                rows.append(f"  {n.change:<{width}}  {n.delta_params:>+8,}  no paired run finished")
                continue
            interval = f"[{_bound(e.ci_low)}, {_bound(e.ci_high)}]" if not math.isnan(e.ci_low) else "n/a"
            rows.append(
                f"  {n.change:<{width}}  {n.delta_params:>+8,}  {format_number(e.mean, signed=True):>9}  {interval:^21}  "
                f"{format_p(e.p_value):>8}  {format_p(e.p_adjusted):>8}  {e.n:>3}  {e.label}"
            )
        blocks.append("\n".join([head, *rows]))
    # The warnings are not repeated here: run_sensitivity raised them before training, which printed them once.
    advice = result.advice()
    note = textwrap.fill(f"{LAYERS_NOTE} {TEST_NOTE}", width=100)  # a terminal's lines, not one of 330 characters
    return "\n\n".join([note, *blocks, *([advice] if advice else [])])


def _bound(value: float) -> str:
    """An interval's end: a signed number, or -inf/+inf where the test leaves it unbounded."""
    return f"{'+' if value > 0 else '-'}inf" if math.isinf(value) else format_number(value, signed=True)
