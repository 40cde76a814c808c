"""Named feature blocks: parts of the input a search may choose among (issue #24, "one backbone or both").

A block is a name for some input columns: a `[start, end)` range of column positions, or the prefix their
names share (`[data] blocks = {vgg = [0, 1000], xception = "xception_"}`). A Parquet column holding a
fixed-size list of numbers is a block by itself: it reads as the columns `<name>_0 ...`, block `<name>`.
Blocks resolve to ranges of encoded features (`Preprocessing.blocks`), which travel with the study and the
exported model, so a network trained on some blocks takes the full vector and selects its columns itself.
No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.base import is_int
from archsearch.trainers._errors import DataError

__all__ = ["BLOCK_NAME", "check_blocks", "resolve_blocks", "block_indices", "block_ranges"]

BLOCK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # no "+": a trial's choice joins names with it
_RULE = (
    "a table of block names (letters, digits, _ . -) to [start, end) column ranges (0 <= start < end) or to "
    'column-name prefixes, e.g. {vgg = [0, 1000], xception = "xception_"}'
)

Blocks = tuple[tuple[str, Any], ...]  # (name, (start, end) or prefix), as DataSpec holds them


def check_blocks(value: Any) -> Blocks:
    """DataSpec's `blocks` as a tuple of (name, (start, end) | prefix) pairs; raises naming `[data] blocks`."""
    pairs = list(value.items()) if isinstance(value, Mapping) else value
    if not isinstance(pairs, (list, tuple)):
        raise _invalid(value)
    checked = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise _invalid(value)
        name, where = pair
        if not (isinstance(name, str) and BLOCK_NAME.match(name)):
            raise _invalid(value)
        if isinstance(where, str) and where:
            checked.append((name, where))
        elif (
            isinstance(where, (list, tuple))
            and len(where) == 2
            and all(is_int(v) for v in where)
            and 0 <= where[0] < where[1]
        ):
            checked.append((name, (int(where[0]), int(where[1]))))
        else:
            raise _invalid(value)
    if len({name for name, _ in checked}) != len(checked):
        raise _invalid(value)
    return tuple(checked)


def _invalid(value: Any) -> DataError:
    return DataError(f"The 'blocks' parameter of [data] must be {_RULE}. Got {value!r} instead.")


def resolve_blocks(
    blocks: Blocks, columns: Sequence[str], widths: Sequence[int], where: str
) -> dict[str, tuple[tuple[int, int], ...]]:
    """Each block's encoded-feature ranges, from input `columns` and each column's encoded `widths`.

    Raises:
        DataError: A range reaches past the last column, or a prefix names no column.
    """
    starts = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    resolved = {}
    for name, spec in blocks:
        if isinstance(spec, str):
            chosen = [i for i, column in enumerate(columns) if column.startswith(spec)]
            if not chosen:
                raise DataError(
                    f"[data] blocks: block {name!r} takes the columns named {spec!r}..., but {where} has none "
                    f"(its first columns: {', '.join(map(repr, columns[:3]))})."
                )
        else:
            if spec[1] > len(columns):
                raise DataError(
                    f"[data] blocks: block {name!r} = [{spec[0]}, {spec[1]}] reaches past the {len(columns):,} "
                    f"input columns of {where} (positions count from 0, the end is not included)."
                )
            chosen = list(range(*spec))
        features = [j for i in chosen for j in range(starts[i], starts[i + 1])]
        resolved[name] = block_ranges(features)
    return resolved


def block_ranges(features: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Sorted feature indices as [start, end) runs: a 1,000-d block stores as one pair.

    >>> block_ranges([0, 1, 2, 5, 6])
    ((0, 3), (5, 7))
    """
    runs: list[list[int]] = []
    for j in sorted(set(features)):
        if runs and runs[-1][1] == j:
            runs[-1][1] = j + 1
        else:
            runs.append([j, j + 1])
    return tuple((start, end) for start, end in runs)


def block_indices(blocks: Mapping[str, Sequence[Sequence[int]]], names: Sequence[str]) -> list[int]:
    """The sorted encoded-feature indices of the named blocks (their union).

    Raises:
        DataError: A name is not a block of the data.
    """
    unknown = [name for name in names if name not in blocks]
    if unknown:
        known = ", ".join(map(repr, blocks)) or "none: set [data] blocks"
        raise DataError(f"Unknown feature block {unknown[0]!r}; the data's blocks are {known}.")
    return sorted({j for name in names for start, end in blocks[name] for j in range(start, end)})
