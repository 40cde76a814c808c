"""A space's defaults fitted to the data's width: wide inputs (frozen-feature vectors) and many classes.

The default `MLPSpace` was tuned on tables of 4 to 100 columns. On a 2,000-d vector of frozen features its
per-feature embedding turns the first layer's input into 2,000 x 16 values (trials 10 to 20 times slower,
issue #24), and a hidden layer of 16 units is a bottleneck for 40 classes. `fit_space` changes only the
keys the user left at their defaults; an embedding the user asked for on wide data is kept, with a note.

The rules (n = input features after encoding, k = classes, 1 for regression):

- `embedding`: ("none",) when n > MAX_EMBEDDED_FEATURES.
- `width`: low = max(16, the power of two >= k), high = max(512, min(2048, the power of two >= n / 2)),
  so a 40-class, 2,000-d head searches 64 to 1,024 units; low never exceeds high, nor a user's baseline.
- `blocks`: with 2 to MAX_AUTO_BLOCKS named feature blocks in the data (`[data] blocks`, an NPZ's `X_<name>`
  arrays, a Parquet file's list columns), each block alone and all of them together, so "one backbone or
  both" is searched and the report answers it; more blocks than that are read together unless `[space]
  blocks` chooses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from archsearch.spaces._mlp import MLPSpace

__all__ = ["MAX_AUTO_BLOCKS", "MAX_EMBEDDED_FEATURES", "WIDE_WIDTH_CAP", "fit_space", "wide_width"]

# Above this many input features the default space searches no per-feature embedding ("pl", "periodic").
# One epoch of a 2 x 256 network with "pl" (16 values) took 2.8x one without at 64 features, 13x at 256, 23x at
# 512 and 45x at 2,000 (2,000 rows, one thread; BENCHMARKS.md section 12), and the embedding's gains were
# measured on tables of at most 100 columns: past 256 it costs an order of magnitude for a gain never measured.
MAX_EMBEDDED_FEATURES = 256
WIDE_WIDTH_CAP = 2048  # the widest upper end of `width` the rule picks; a user may set more
# Blocks searched by default: k alone plus all together is k + 1 choices, each taking a share of the trials.
MAX_AUTO_BLOCKS = 4


def _power_of_two_at_least(value: float) -> int:
    power = 1
    while power < value:
        power *= 2
    return power


def wide_width(n_features: int, n_outputs: int, default: tuple[int, int] = (16, 512)) -> tuple[int, int]:
    """The default `width` range for n input features and n_outputs classes (see the module docstring).

    >>> wide_width(2000, 40), wide_width(13, 3), wide_width(64, 1000)
    ((64, 1024), (16, 512), (512, 512))
    """
    high = max(default[1], min(WIDE_WIDTH_CAP, _power_of_two_at_least(n_features / 2)))
    low = min(max(default[0], _power_of_two_at_least(n_outputs)), high)
    return low, high


def fit_space(
    space: MLPSpace,
    n_features: int,
    n_outputs: int,
    given: Collection[str] | None = None,
    block_names: Sequence[str] = (),
) -> tuple[MLPSpace, list[str]]:
    """The space to search on this data, and one note per change or warning (for the search's first lines).

    Args:
        space: The configured space.
        n_features: Input features after encoding.
        n_outputs: Classes (1 for regression).
        given: The `[space]` keys the user wrote; None: every field that differs from `MLPSpace()`'s.
        block_names: The data's named feature blocks, in order.

    Example:
        >>> space, notes = fit_space(MLPSpace(), 96, 5, given=(), block_names=("a", "b"))
        >>> space.blocks
        (('a',), ('b',), ('a', 'b'))
    """
    default = MLPSpace()
    if given is None:
        given = [f.name for f in dataclasses.fields(space) if getattr(space, f.name) != getattr(default, f.name)]
    changes, notes = {}, []
    embeds = [e for e in space.embedding if e != "none"]
    if n_features > MAX_EMBEDDED_FEATURES and embeds:
        if "embedding" in given:
            notes.append(
                f"[space] embedding = {list(space.embedding)} on {n_features:,} input features: each embedded "
                f"trial's first layer reads {n_features:,} x {max(space.embedding_dim)} values, often 10x slower; "
                f"leave embedding out to search none above {MAX_EMBEDDED_FEATURES} features."
            )
        else:
            changes["embedding"] = ("none",)
            notes.append(
                f"Space: no per-feature embedding on {n_features:,} input features (above {MAX_EMBEDDED_FEATURES}); "
                '[space] embedding = ["none", "pl"] searches it anyway.'
            )
    if "width" not in given and "width_step" not in given:
        low, high = wide_width(n_features, n_outputs, default.width)
        smallest = min((w for widths in space.baselines for w in widths), default=low)
        low = min(low, smallest)
        if (low, high) != space.width:
            changes["width"] = (low, high)
            notes.append(
                f"Space: hidden widths {low} to {high} for {n_features:,} inputs and {n_outputs:,} outputs; "
                "[space] width sets them."
            )
    if 2 <= len(block_names) <= MAX_AUTO_BLOCKS and "blocks" not in given and not space.blocks:
        changes["blocks"] = (*((name,) for name in block_names), tuple(block_names))
        listed = ", ".join(str(list(choice)) for choice in changes["blocks"])
        notes.append(f"Space: feature blocks searched alone and together ({listed}); [space] blocks sets the choices.")
    return (dataclasses.replace(space, **changes) if changes else space), notes
