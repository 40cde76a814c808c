"""Search spaces: ranges in, plain architecture and hyperparameter values out (no torch)."""

from archsearch.spaces._candidate import ACTIVATIONS
from archsearch.spaces._candidate import Architecture
from archsearch.spaces._candidate import Candidate
from archsearch.spaces._candidate import classify_shape
from archsearch.spaces._candidate import EMBEDDINGS
from archsearch.spaces._validation import check_keys
from archsearch.spaces._validation import is_int
from archsearch.spaces._validation import is_real
from archsearch.spaces._candidate import Hyperparameters
from archsearch.spaces._candidate import LR_SCHEDULES
from archsearch.spaces._candidate import NORMALIZATIONS
from archsearch.spaces._candidate import OPTIMIZERS
from archsearch.spaces._mlp import FUNNELS
from archsearch.spaces._mlp import LABEL_SMOOTHING_STEP
from archsearch.spaces._mlp import MLPSpace
from archsearch.spaces._mlp import SHAPES
from archsearch.spaces._neighbours import across_sizes_neighbours
from archsearch.spaces._neighbours import architecture_key
from archsearch.spaces._neighbours import HIDDEN_LAYER_WIDTHS
from archsearch.spaces._neighbours import LINEAR_NEIGHBOUR
from archsearch.spaces._neighbours import Neighbour
from archsearch.spaces._neighbours import NEIGHBOUR_KINDS
from archsearch.spaces._neighbours import neighbourhood
from archsearch.spaces._neighbours import pick_centres
from archsearch.spaces._validation import InvalidSpaceError


__all__ = [
    "EMBEDDINGS",
    "check_keys",
    "is_int",
    "is_real",
    "classify_shape",
    "ACTIVATIONS",
    "Architecture",
    "Candidate",
    "FUNNELS",
    "HIDDEN_LAYER_WIDTHS",
    "Hyperparameters",
    "InvalidSpaceError",
    "LINEAR_NEIGHBOUR",
    "LABEL_SMOOTHING_STEP",
    "LR_SCHEDULES",
    "MLPSpace",
    "NEIGHBOUR_KINDS",
    "NORMALIZATIONS",
    "Neighbour",
    "OPTIMIZERS",
    "SHAPES",
    "across_sizes_neighbours",
    "architecture_key",
    "neighbourhood",
    "pick_centres",
]
