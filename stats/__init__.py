"""archsearch.stats: the numbers that reports and the sensitivity analysis rest on, with no plotting.

Paired seed-by-seed comparisons (Wilcoxon, Holm, power), and the study-wide summaries (Pareto front, knee,
size bins, spreads, rank correlations) computed on a study flattened into one row per trial. Both
`archsearch.dashboards` (which draws these results) and the search side import it; of archsearch's own packages it
imports only `archsearch.spaces` (layer shapes) and `archsearch.storage` (the names of stored attributes).
"""

from archsearch.stats._analysis import (
    MAX_SIZE_BINS,
    Knee,
    PruningSummary,
    StudyData,
    assign_size_bins,
    depth_summary,
    dropout_effect,
    find_knee,
    flatten_trials,
    format_count,
    linear_baseline,
    load_study_data,
    pareto_front,
    pruning_summary,
    shape_by_size,
    spread_by_size,
    width_correlations,
)
from archsearch.stats._paired import (
    DIRECTIONS,
    VERDICTS,
    PairedEffect,
    can_reach_significance,
    compare_to_centre,
    holm,
    minimum_detectable_difference,
    noise_floor,
    paired_differences,
    smallest_possible_p,
)

__all__ = [
    "DIRECTIONS",
    "MAX_SIZE_BINS",
    "VERDICTS",
    "Knee",
    "PairedEffect",
    "PruningSummary",
    "StudyData",
    "assign_size_bins",
    "can_reach_significance",
    "compare_to_centre",
    "depth_summary",
    "dropout_effect",
    "find_knee",
    "flatten_trials",
    "format_count",
    "holm",
    "linear_baseline",
    "load_study_data",
    "minimum_detectable_difference",
    "noise_floor",
    "paired_differences",
    "pareto_front",
    "pruning_summary",
    "shape_by_size",
    "smallest_possible_p",
    "spread_by_size",
    "width_correlations",
]
