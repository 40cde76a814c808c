"""Architectures one small size change away from a centre, and centres spread over the size range.

These are the candidates of ``archsearch sensitivity``: each neighbour is trained with the centre's seeds
and compared to it, so a neighbour carries a readable ``change`` for the report and a stable ``key`` for
deduplication and resuming.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from archsearch.base import is_finite_real, is_int, is_sequence
from archsearch.spaces._candidate import NetSpec
from archsearch.spaces._validation import check_int, check_name, error

NEIGHBOUR_KINDS = ("centre", "width", "remove_layer", "add_layer", "uniform", "no_dropout", "linear", "hidden_layer")
# What the linear model among the neighbours is: not the tuned linear baseline of the search (its best 0-layer
# trial), but a linear model trained with the centre's hyperparameters.
LINEAR_NEIGHBOUR = "linear model with the centre's hyperparameters"
# Widths of the one hidden layer tried around a linear centre, when the caller gives none.
HIDDEN_LAYER_WIDTHS = (8, 32, 128)
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Neighbour:
    """One architecture to compare with the centre, and how it differs from it.

    Attributes:
        kind: One of :data:`NEIGHBOUR_KINDS`.
        change: What changed, for people, layers numbered from 1 next to the input (as the report numbers
            them): ``"layer 1: 64 -> 65 (+1)"``, ``"remove layer 2"``.
        layer: Index from 0, in the centre, of the layer resized, removed or copied (``change`` says
            ``layer + 1``); ``None`` for whole-network changes.
        delta_units: Hidden units of the neighbour minus those of the centre.
        architecture: The neighbour itself.
        key: :func:`architecture_key` of ``architecture``.
    """

    kind: str
    change: str
    layer: int | None
    delta_units: int
    architecture: NetSpec
    key: str


def architecture_key(architecture: NetSpec) -> str:
    """Return a stable id of an architecture, such as ``"w=64-65-32|d=0.1-0.1-0|a=relu"``.

    A model without hidden layers is ``"linear"`` whatever its recorded activation, which it never uses.
    An input embedding adds ``"|e=pl8"`` (kind and values per feature); without one the key is as before. So
    do feature blocks (``"|in=a+b"``) and a head other than softmax (``"|h=one_vs_rest"``).
    Dropouts are written with 15 significant digits, so ``0.30000000000000004`` and ``0.3`` share a key.
    """
    # The inputs read and the head, when not all and softmax: a network on another block is another network.
    reads = ("|in=" + "+".join(architecture.blocks) if architecture.blocks else "") + (
        f"|h={architecture.head}" if architecture.head != "softmax" else ""
    )
    if architecture.depth == 0:
        return "linear" + reads
    widths = "-".join(str(w) for w in architecture.widths)
    dropouts = "-".join(format(p, ".15g") for p in architecture.dropouts)
    key = f"w={widths}|d={dropouts}|a={architecture.activation}"
    if architecture.embedding != "none":
        key += f"|e={architecture.embedding}{architecture.embedding_dim}"
    return key + reads


def neighbourhood(
    centre: NetSpec,
    n_inputs: int,
    n_outputs: int,
    steps: Sequence[float] = (1, 2, 0.1, 0.25, 0.5),
    *,
    hidden_widths: Sequence[int] = HIDDEN_LAYER_WIDTHS,
    n_numeric: int | None = None,
) -> list[Neighbour]:
    """List the centre and every architecture one size change away from it.

    In this order: the centre; per hidden layer, its width changed by +-1 neuron and by +-each step (a
    step >= 1 is a neuron count, a step in (0, 1) a fraction of that layer's width, rounded half up, at
    least 1 neuron); each layer removed, with its dropout; a copy of each layer (width and dropout)
    added after it; all layers at one width with the closest parameter count to the centre's (only for
    2 layers or more that are not already equal); all dropouts set to 0 (when some is not); the linear
    model with the centre's hyperparameters (when the centre has layers). A linear centre has no width
    to change or copy; its neighbours answer "would a hidden layer help?": one hidden layer at each of
    ``hidden_widths``, without dropout, with the centre's activation. Every neighbour with hidden layers
    keeps the centre's input embedding, so that only the size differs; the linear model is the plain one
    the search tries first (an embedding at depth 0 would make it non-linear). Neighbours with a layer narrower
    than 1 are dropped, and so are repeats of an earlier key: removing the only layer of a 1-layer
    centre is listed as ``remove_layer``, and named as the linear model it is.

    Args:
        centre: The architecture to perturb.
        n_inputs: Features of the dataset, for parameter counts.
        n_outputs: Outputs of the network, for parameter counts.
        steps: Width changes besides +-1 neuron.
        hidden_widths: Widths of the one hidden layer tried around a linear centre.
        n_numeric: Inputs that a centre's embedding encodes (the rest are one-hot); None: all of them.

    Returns:
        The neighbours, centre first, with distinct keys.

    Raises:
        InvalidSpaceError: If ``centre`` is not a NetSpec, ``n_inputs`` or ``n_outputs`` is not an
            int >= 1, a step is neither a fraction in (0, 1) nor a whole number >= 1, or ``hidden_widths``
            is not a non-empty list of ints >= 1.

    Example:
        >>> arch = NetSpec(widths=(64, 32), dropouts=(0.1, 0.0), activation="relu")
        >>> [n.change for n in neighbourhood(arch, 10, 2, steps=())][:3]
        ['centre', 'layer 1: 64 -> 65 (+1)', 'layer 1: 64 -> 63 (-1)']
        >>> linear = NetSpec(widths=(), dropouts=(), activation="relu")
        >>> [n.change for n in neighbourhood(linear, 10, 2, hidden_widths=(8, 64))]
        ['centre', 'one hidden layer of 8', 'one hidden layer of 64']
    """
    owner = "neighbourhood"
    _check_sizes(owner, centre, n_inputs, n_outputs)
    if n_numeric is not None and not (is_int(n_numeric) and 0 <= n_numeric <= n_inputs):
        raise error(owner, "n_numeric", f"an int in [0, n_inputs = {n_inputs}] or None", n_numeric)
    if not (is_sequence(steps) and all(_is_step(s) for s in steps)):
        raise error(owner, "steps", "positive numbers; steps >= 1 must be whole neuron counts", steps)
    if not (is_sequence(hidden_widths) and hidden_widths and all(is_int(w) and w >= 1 for w in hidden_widths)):
        raise error(owner, "hidden_widths", "a non-empty list of ints >= 1", hidden_widths)
    return _distinct(
        [
            _neighbour("centre", "centre", None, centre, centre.widths, centre.dropouts),
            *_hidden_layer(centre, hidden_widths),
            *_resized(centre, [float(s) for s in steps]),
            *_removed(centre),
            *_added(centre),
            *_uniform(centre, n_inputs, n_outputs, n_numeric),
            *_without_dropout(centre),
            *_linear(centre),
        ]
    )


def across_sizes_neighbours(centre: NetSpec, n_inputs: int, n_outputs: int, step: float = 0.5) -> list[Neighbour]:
    """List the smaller neighbourhood used for several centres: widths +-1 and +-step, layers -1 and +1.

    The same rules as :func:`neighbourhood` apply, with ``steps=(step,)`` and no uniform, no-dropout or
    linear neighbour. ``n_inputs`` and ``n_outputs`` are only checked, so both functions take the same
    arguments.

    Raises:
        InvalidSpaceError: As :func:`neighbourhood`, for ``step`` instead of ``steps``.

    Example:
        >>> arch = NetSpec(widths=(8,), dropouts=(0.0,), activation="relu")
        >>> [n.architecture.widths for n in across_sizes_neighbours(arch, 4, 1)]
        [(8,), (9,), (7,), (12,), (4,), (), (8, 8)]
    """
    owner = "across_sizes_neighbours"
    _check_sizes(owner, centre, n_inputs, n_outputs)
    if not _is_step(step):
        raise error(owner, "step", "a positive number; a step >= 1 must be a whole neuron count", step)
    return _distinct(
        [
            _neighbour("centre", "centre", None, centre, centre.widths, centre.dropouts),
            *_resized(centre, [float(step)]),
            *_removed(centre),
            *_added(centre),
        ]
    )


def pick_centres(points: Sequence[tuple[int, float]], k: int, direction: str) -> list[int]:
    """Choose ``k`` trials spread over the size range along the front of small and good networks.

    The front holds the trials that no other trial beats with as few or fewer parameters and an equal or
    better value (of equal trials, the first). From it, the smallest and the largest are chosen, then
    those nearest to evenly spaced points in log(n_params) between them; ``k == 1`` chooses the largest,
    which is the best trial. If the front is too short, the front of the remaining trials fills up, and
    so on.

    Args:
        points: ``(n_params, value)`` of each candidate trial.
        k: How many centres to choose; fewer come back when ``points`` is shorter.
        direction: ``"maximize"`` or ``"minimize"``, how ``value`` improves.

    Returns:
        Indices into ``points``, by increasing parameter count.

    Raises:
        InvalidSpaceError: If ``points`` is empty or not ``(int >= 1, finite float)`` pairs, ``k < 1``, or
            ``direction`` is unknown.

    Example:
        >>> pick_centres([(100, 0.8), (1000, 0.9), (400, 0.7), (10000, 0.95)], k=2, direction="maximize")
        [0, 3]
    """
    owner = "pick_centres"
    if not (is_sequence(points) and points):
        raise error(owner, "points", "a non-empty list of (n_params, value) pairs", points)
    for i, point in enumerate(points):
        # Name the first bad pair rather than print thousands of trials.
        if not _is_point(point):
            raise error(owner, f"points[{i}]", "an (n_params >= 1, finite value) pair", point)
    k = check_int(owner, "k", k, low=1)
    check_name(owner, "direction", direction, DIRECTIONS)
    sign = 1.0 if direction == "maximize" else -1.0
    remaining = sorted(range(len(points)), key=lambda i: (points[i][0], -sign * points[i][1], i))
    chosen: list[int] = []
    while remaining and len(chosen) < k:
        front = _front(remaining, points, sign)
        chosen += _spread(front, points, k - len(chosen))
        on_front = set(front)
        remaining = [i for i in remaining if i not in on_front]
    return sorted(chosen, key=lambda i: (points[i][0], i))


def _check_sizes(owner: str, centre: NetSpec, n_inputs: int, n_outputs: int) -> None:
    if not isinstance(centre, NetSpec):
        raise error(owner, "centre", "a NetSpec", centre)
    check_int(owner, "n_inputs", n_inputs, low=1)
    check_int(owner, "n_outputs", n_outputs, low=1)


def _is_step(step: object) -> bool:
    """Whether ``step`` is a fraction of a width in (0, 1) or a whole neuron count >= 1."""
    return is_finite_real(step) and step > 0 and (step < 1 or float(step).is_integer())


def _is_point(point: object) -> bool:
    return is_sequence(point) and len(point) == 2 and is_int(point[0]) and point[0] >= 1 and is_finite_real(point[1])


def _neighbour(
    kind: str,
    change: str,
    layer: int | None,
    centre: NetSpec,
    widths: Sequence[int],
    dropouts: Sequence[float],
) -> Neighbour | None:
    """Build a neighbour, or ``None`` when a width fell below 1."""
    if any(w < 1 for w in widths):
        return None
    # Every neighbour trains as its centre did: the same activation and norm layer (a norm layer changes how
    # a linear neighbour's epoch is batched, so it keeps it too), the same input blocks and head; the embedding
    # only with hidden layers.
    architecture = NetSpec(
        widths=tuple(widths),
        dropouts=tuple(dropouts),
        activation=centre.activation,
        normalization=centre.normalization,
        blocks=centre.blocks,
        head=centre.head,
    )
    if widths and centre.embedding != "none":
        architecture = dataclasses.replace(architecture, embedding=centre.embedding, embedding_dim=centre.embedding_dim)
    delta = architecture.total_units - centre.total_units
    return Neighbour(kind, change, layer, delta, architecture, architecture_key(architecture))


def _distinct(neighbours: Iterable[Neighbour | None]) -> list[Neighbour]:
    seen: dict[str, Neighbour] = {}
    for neighbour in neighbours:
        if neighbour is not None and neighbour.key not in seen:
            seen[neighbour.key] = neighbour
    return list(seen.values())


def _resized(centre: NetSpec, steps: Sequence[float]) -> Iterable[Neighbour | None]:
    for i, width in enumerate(centre.widths):
        for step in (1.0, *steps):
            # Half up rather than Python's round-half-even, so 0.5 of 5 is 3 neurons, as one would say.
            units = int(step) if step >= 1 else max(1, math.floor(step * width + 0.5))
            for sign in (1, -1):
                label = f"{sign * units:+d}" if step >= 1 else f"{sign * step * 100:+g}%"
                widths = list(centre.widths)
                widths[i] = width + sign * units
                change = f"layer {i + 1}: {width} -> {widths[i]} ({label})"
                yield _neighbour("width", change, i, centre, widths, centre.dropouts)


def _removed(centre: NetSpec) -> Iterable[Neighbour | None]:
    for i in range(centre.depth):
        widths = centre.widths[:i] + centre.widths[i + 1 :]
        dropouts = centre.dropouts[:i] + centre.dropouts[i + 1 :]
        change = f"remove layer {i + 1}" + (f" ({_linear_name(centre)})" if not widths else "")
        yield _neighbour("remove_layer", change, i, centre, widths, dropouts)


def _hidden_layer(centre: NetSpec, widths: Sequence[int]) -> Iterable[Neighbour | None]:
    if centre.depth:
        return
    for width in sorted(set(widths)):
        yield _neighbour("hidden_layer", f"one hidden layer of {width}", 0, centre, (width,), (0.0,))


def _added(centre: NetSpec) -> Iterable[Neighbour | None]:
    for i, width in enumerate(centre.widths):
        widths = centre.widths[: i + 1] + (width,) + centre.widths[i + 1 :]
        dropouts = centre.dropouts[: i + 1] + (centre.dropouts[i],) + centre.dropouts[i + 1 :]
        change = f"add layer after {i + 1} (copy of width {width})"
        yield _neighbour("add_layer", change, i, centre, widths, dropouts)


def _uniform(centre: NetSpec, n_inputs: int, n_outputs: int, n_numeric: int | None) -> Iterable[Neighbour | None]:
    depth = centre.depth
    if depth <= 1 or len(set(centre.widths)) == 1:
        return
    target = centre.n_params(n_inputs, n_outputs, n_numeric=n_numeric)
    # The embedding's own parameters are the same at any width, so match the Linear chain's: with f inputs
    # to the first layer, (depth - 1) w^2 + (f + n_outputs + depth) w + n_outputs; take its positive root.
    fan_in = centre.input_width(n_inputs, n_numeric=n_numeric)
    chain = dataclasses.replace(centre, embedding="none").n_params(fan_in, n_outputs)
    a, b, c = depth - 1, fan_in + n_outputs + depth, n_outputs - chain
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}

    def distance(w: int) -> tuple[int, int]:
        uniform = dataclasses.replace(centre, widths=(w,) * depth)
        return abs(uniform.n_params(n_inputs, n_outputs, n_numeric=n_numeric) - target), w

    width = min(candidates, key=distance)
    change = f"uniform {width} x {depth} at same parameter count"
    yield _neighbour("uniform", change, None, centre, (width,) * depth, centre.dropouts)


def _without_dropout(centre: NetSpec) -> Iterable[Neighbour | None]:
    if any(centre.dropouts):
        yield _neighbour("no_dropout", "dropout -> 0", None, centre, centre.widths, (0.0,) * centre.depth)


def _linear(centre: NetSpec) -> Iterable[Neighbour | None]:
    if centre.depth:
        yield _neighbour("linear", _linear_name(centre), None, centre, (), ())


def _linear_name(centre: NetSpec) -> str:
    # The linear neighbour has no embedding (see neighbourhood): say so where that is a second difference.
    if centre.embedding == "none":
        return LINEAR_NEIGHBOUR
    return f"{LINEAR_NEIGHBOUR}, without its {centre.embedding} embedding"


def _front(order: Sequence[int], points: Sequence[tuple[int, float]], sign: float) -> list[int]:
    """Return the non-dominated indices of ``order``, which is sorted by size, then best value first."""
    front: list[int] = []
    for i in order:
        # Sorted by size, a point is on the front exactly when it beats every smaller point on value.
        if not front or sign * points[i][1] > sign * points[front[-1]][1]:
            front.append(i)
    return front


def _spread(front: Sequence[int], points: Sequence[tuple[int, float]], k: int) -> list[int]:
    """Pick ``k`` of the size-sorted ``front``: both ends, then the nearest to even steps in log size."""
    if len(front) <= k:
        return list(front)
    if k == 1:
        return [front[-1]]
    logs = {i: math.log(points[i][0]) for i in front}
    low, high = logs[front[0]], logs[front[-1]]
    chosen = [front[0], front[-1]]
    for j in range(1, k - 1):
        target = low + (high - low) * j / (k - 1)
        chosen.append(min((i for i in front if i not in chosen), key=lambda i: abs(logs[i] - target)))
    return chosen
