"""Search spaces: ranges in, plain architecture and hyperparameter values out (no torch)."""

from archsearch.spaces._candidate import ACTIVATIONS
from archsearch.spaces._candidate import Architecture
from archsearch.spaces._candidate import Candidate
from archsearch.spaces._candidate import classify_shape
from archsearch.spaces._candidate import Hyperparameters
from archsearch.spaces._candidate import OPTIMIZERS
from archsearch.spaces._mlp import FUNNELS
from archsearch.spaces._mlp import MLPSpace
from archsearch.spaces._mlp import SHAPES
from archsearch.spaces._neighbours import across_sizes_neighbours
from archsearch.spaces._neighbours import architecture_key
from archsearch.spaces._neighbours import Neighbour
from archsearch.spaces._neighbours import NEIGHBOUR_KINDS
from archsearch.spaces._neighbours import neighbourhood
from archsearch.spaces._neighbours import pick_centres
from archsearch.spaces._validation import InvalidSpaceError


__all__ = [
    "classify_shape",
    "ACTIVATIONS",
    "Architecture",
    "Candidate",
    "FUNNELS",
    "Hyperparameters",
    "InvalidSpaceError",
    "MLPSpace",
    "NEIGHBOUR_KINDS",
    "Neighbour",
    "OPTIMIZERS",
    "SHAPES",
    "across_sizes_neighbours",
    "architecture_key",
    "neighbourhood",
    "pick_centres",
]
