"""Attributions, prototypes and counterfactuals of an exported model (Captum; see `archsearch.explanations`)."""

from __future__ import annotations

from archsearch.trainers.explain._attributions import IG_STEPS, PERMUTATION_REPEATS, rank_agreement
from archsearch.trainers.explain._explain import (
    BASELINE_RULE,
    attributions,
    counterfactual_of,
    load_program,
    members_of,
    prototype_of,
)
from archsearch.trainers.explain._inputs import ColumnSpace, unscaled
from archsearch.trainers.explain._prototypes import PENALTY
from archsearch.trainers.explain._relaxed import torch_threads

__all__ = [
    "BASELINE_RULE",
    "IG_STEPS",
    "PENALTY",
    "PERMUTATION_REPEATS",
    "ColumnSpace",
    "attributions",
    "counterfactual_of",
    "load_program",
    "members_of",
    "prototype_of",
    "rank_agreement",
    "torch_threads",
    "unscaled",
]
