"""Search spaces: ranges in, plain architecture and hyperparameter values out (no torch)."""

from archsearch.spaces._candidate import ACTIVATIONS
from archsearch.spaces._candidate import Architecture
from archsearch.spaces._candidate import Candidate
from archsearch.spaces._candidate import Hyperparameters
from archsearch.spaces._candidate import OPTIMIZERS
from archsearch.spaces._mlp import FUNNELS
from archsearch.spaces._mlp import MLPSpace
from archsearch.spaces._mlp import SHAPES
from archsearch.spaces._validation import InvalidSpaceError


__all__ = [
    "ACTIVATIONS",
    "Architecture",
    "Candidate",
    "FUNNELS",
    "Hyperparameters",
    "InvalidSpaceError",
    "MLPSpace",
    "OPTIMIZERS",
    "SHAPES",
]
