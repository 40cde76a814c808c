"""Search spaces: ranges in, plain architecture and hyperparameter values out (no torch)."""

from archsearch.spaces._candidate import (
    ACTIVATIONS,
    EMBEDDING_DIM,
    EMBEDDINGS,
    HEADS,
    LR_SCHEDULES,
    NORMALIZATIONS,
    OPTIMIZERS,
    Candidate,
    Hyperparameters,
    NetSpec,
    classify_shape,
)
from archsearch.spaces._mlp import FUNNELS, LABEL_SMOOTHING_STEP, RECIPE_BASELINE, SHAPES, MLPSpace
from archsearch.spaces._neighbours import (
    HIDDEN_LAYER_WIDTHS,
    LINEAR_NEIGHBOUR,
    NEIGHBOUR_KINDS,
    Neighbour,
    across_sizes_neighbours,
    architecture_key,
    neighbourhood,
    pick_centres,
)
from archsearch.spaces._size import NetSize, check_budget_reachable, net_size, over_budget
from archsearch.spaces._validation import InvalidSpaceError, check_keys
from archsearch.spaces._wide import MAX_EMBEDDED_FEATURES, fit_space, wide_width

__all__ = [
    "EMBEDDING_DIM",
    "EMBEDDINGS",
    "HEADS",
    "check_keys",
    "fit_space",
    "wide_width",
    "MAX_EMBEDDED_FEATURES",
    "classify_shape",
    "ACTIVATIONS",
    "NetSpec",
    "Candidate",
    "FUNNELS",
    "HIDDEN_LAYER_WIDTHS",
    "Hyperparameters",
    "InvalidSpaceError",
    "LINEAR_NEIGHBOUR",
    "LABEL_SMOOTHING_STEP",
    "LR_SCHEDULES",
    "MLPSpace",
    "NetSize",
    "net_size",
    "check_budget_reachable",
    "over_budget",
    "NEIGHBOUR_KINDS",
    "NORMALIZATIONS",
    "Neighbour",
    "OPTIMIZERS",
    "RECIPE_BASELINE",
    "SHAPES",
    "across_sizes_neighbours",
    "architecture_key",
    "neighbourhood",
    "pick_centres",
]
