import dataclasses
import re

import pytest

from archsearch.spaces import (
    NEIGHBOUR_KINDS,
    InvalidSpaceError,
    Neighbour,
    NetSpec,
    across_sizes_neighbours,
    architecture_key,
    neighbourhood,
    pick_centres,
)

N_IN, N_OUT = 10, 3


def _arch(widths: tuple[int, ...], dropouts: tuple[float, ...] | None = None) -> NetSpec:
    dropouts = (0.0,) * len(widths) if dropouts is None else dropouts
    return NetSpec(widths=widths, dropouts=dropouts, activation="relu")


def _widths(neighbours: list[Neighbour]) -> list[tuple[int, ...]]:
    return [n.architecture.widths for n in neighbours]


def test_architecture_key_names_widths_dropouts_and_activation() -> None:
    """Check that the key reads as widths, dropouts and activation, and ignores float noise in dropouts."""
    assert architecture_key(_arch((64, 65, 32), (0.1, 0.1, 0.0))) == "w=64-65-32|d=0.1-0.1-0|a=relu"
    assert architecture_key(_arch((8,), (0.1 + 0.2,))) == architecture_key(_arch((8,), (0.3,)))
    # A linear model never uses its activation, so it does not change the key.
    assert architecture_key(NetSpec(widths=(), dropouts=(), activation="tanh")) == "linear"


def test_neighbourhood_lists_centre_then_each_kind_in_order() -> None:
    """Check that the centre comes first, then widths, removals, additions, uniform, no dropout, linear."""
    neighbours = neighbourhood(_arch((64, 32), (0.1, 0.0)), N_IN, N_OUT)
    kinds = [n.kind for n in neighbours]
    assert kinds[0] == "centre" and neighbours[0].architecture == _arch((64, 32), (0.1, 0.0))
    # Each kind forms one block, in the documented order; only a linear centre gets hidden_layer neighbours.
    assert list(dict.fromkeys(kinds)) == [k for k in NEIGHBOUR_KINDS if k != "hidden_layer"]
    assert neighbours[-1].change == "linear model with the centre's hyperparameters"
    assert len({n.key for n in neighbours}) == len(neighbours)
    assert all(n.key == architecture_key(n.architecture) for n in neighbours)


def test_neighbourhood_width_steps_match_hand_values() -> None:
    """Check that +-1, absolute steps and fractional steps give the hand-computed widths and labels."""
    neighbours = neighbourhood(_arch((64, 32)), N_IN, N_OUT, steps=(2, 0.5))
    resized = [n for n in neighbours if n.kind == "width"]
    assert _widths(resized) == [
        (65, 32),
        (63, 32),
        (66, 32),
        (62, 32),
        (96, 32),
        (32, 32),
        (64, 33),
        (64, 31),
        (64, 34),
        (64, 30),
        (64, 48),
        (64, 16),
    ]
    assert [n.change for n in resized[3:6]] == [
        "layer 1: 64 -> 62 (-2)",
        "layer 1: 64 -> 96 (+50%)",
        "layer 1: 64 -> 32 (-50%)",
    ]
    assert [(n.layer, n.delta_units) for n in resized[-2:]] == [(1, 16), (1, -16)]


def test_neighbourhood_fraction_steps_round_half_up_to_at_least_one_neuron() -> None:
    """Check that a fraction of a width rounds half up and moves at least one neuron, keeping the first label."""
    neighbours = neighbourhood(_arch((5,)), N_IN, N_OUT, steps=(0.1, 0.5))
    # 10% of 5 is 0.5, one neuron: the same as +-1, so only the +-1 entries remain; 50% is 2.5, three neurons.
    assert _widths([n for n in neighbours if n.kind == "width"]) == [(6,), (4,), (8,), (2,)]
    assert neighbours[1].change == "layer 1: 5 -> 6 (+1)"


def test_neighbourhood_drops_widths_below_one_and_repeated_architectures() -> None:
    """Check that a width of 0 is dropped and that removing the only layer is kept over the linear model."""
    neighbours = neighbourhood(_arch((1,)), N_IN, N_OUT, steps=(1, 2))
    assert [(n.kind, n.architecture.widths) for n in neighbours] == [
        ("centre", (1,)),
        ("width", (2,)),
        ("width", (3,)),
        ("remove_layer", ()),
        ("add_layer", (1, 1)),
    ]
    # The removal is named for the model it gives, not the search's tuned linear baseline.
    assert neighbours[3].change == "remove layer 1 (linear model with the centre's hyperparameters)"


def test_neighbourhood_removes_a_layer_with_its_dropout() -> None:
    """Check that removing a layer removes its dropout and counts its units as lost."""
    neighbours = neighbourhood(_arch((64, 32, 16), (0.1, 0.2, 0.3)), N_IN, N_OUT, steps=())
    removal = next(n for n in neighbours if n.change == "remove layer 2")
    assert removal.architecture == _arch((64, 16), (0.1, 0.3))
    assert (removal.kind, removal.layer, removal.delta_units) == ("remove_layer", 1, -32)


def test_neighbourhood_adds_a_copy_of_a_layer_after_it() -> None:
    """Check that an added layer copies the width and dropout of the layer before it."""
    neighbours = neighbourhood(_arch((64, 32, 16), (0.1, 0.2, 0.3)), N_IN, N_OUT, steps=())
    additions = [n for n in neighbours if n.kind == "add_layer"]
    assert [n.change for n in additions] == [
        f"add layer after {i + 1} (copy of width {w})" for i, w in enumerate((64, 32, 16))
    ]
    assert additions[1].architecture == _arch((64, 32, 32, 16), (0.1, 0.2, 0.2, 0.3))
    assert (additions[1].layer, additions[1].delta_units) == (1, 32)


def test_neighbourhood_uniform_has_the_closest_parameter_count() -> None:
    """Check that the uniform neighbour keeps depth and dropouts and no other width is closer in parameters."""
    centre = _arch((128, 40, 8), (0.1, 0.0, 0.2))
    (uniform,) = [n for n in neighbourhood(centre, N_IN, N_OUT) if n.kind == "uniform"]
    width = uniform.architecture.widths[0]
    assert uniform.architecture == _arch((width,) * 3, (0.1, 0.0, 0.2))
    assert uniform.change == f"uniform {width} x 3 at same parameter count"
    assert uniform.delta_units == 3 * width - 176

    def gap(w: int) -> int:
        return abs(_arch((w,) * 3).n_params(N_IN, N_OUT) - centre.n_params(N_IN, N_OUT))

    # Brute force over every width the quadratic could have missed.
    assert gap(width) == min(gap(w) for w in range(1, 300))


@pytest.mark.parametrize("n_numeric", [-1, N_IN + 1, 2.5, "4"])
def test_neighbourhood_rejects_a_bad_n_numeric(n_numeric: object) -> None:
    """Check that n_numeric outside [0, n_inputs] is an error naming the field, the rule and the value."""
    with pytest.raises(InvalidSpaceError, match=rf"'n_numeric'.*an int in \[0, n_inputs = {N_IN}\] or None"):
        neighbourhood(_arch((8,)), N_IN, N_OUT, n_numeric=n_numeric)


@pytest.mark.parametrize("kind", ["pl", "periodic"])
def test_neighbours_of_an_embedded_centre_keep_its_embedding(kind: str) -> None:
    """Check that every neighbour with layers keeps the centre's embedding, the linear one is plain, keys say
    the embedding, and the uniform neighbour matches the centre's parameters counting only numeric inputs."""
    centre = dataclasses.replace(_arch((128, 40, 8)), embedding=kind, embedding_dim=6)
    n_numeric = 4  # of N_IN = 10 inputs; the other 6 are one-hot and pass through
    neighbours = neighbourhood(centre, N_IN, N_OUT, n_numeric=n_numeric)
    for n in neighbours:
        if n.architecture.depth == 0:
            assert n.architecture.embedding == "none", n.change
        else:
            assert (n.architecture.embedding, n.architecture.embedding_dim) == (kind, 6), n.change
        assert (f"|e={kind}6" in n.key) == (n.architecture.depth > 0)
    (linear,) = [n for n in neighbours if n.kind == "linear"]
    assert linear.change == f"linear model with the centre's hyperparameters, without its {kind} embedding"
    (uniform,) = [n for n in neighbours if n.kind == "uniform"]
    width = uniform.architecture.widths[0]

    def gap(w: int) -> int:
        candidate = dataclasses.replace(centre, widths=(w,) * 3)
        return abs(
            candidate.n_params(N_IN, N_OUT, n_numeric=n_numeric) - centre.n_params(N_IN, N_OUT, n_numeric=n_numeric)
        )

    assert gap(width) == min(gap(w) for w in range(1, 300))
    # The same changes as around the plain centre: the embedding changes no width arithmetic.
    assert [n.change for n in neighbours if n.kind not in ("linear", "uniform")] == [
        n.change for n in neighbourhood(_arch((128, 40, 8)), N_IN, N_OUT) if n.kind not in ("linear", "uniform")
    ]


@pytest.mark.parametrize(
    ("centre", "missing"),
    [
        (_arch((64,), (0.1,)), "uniform"),
        (_arch((32, 32), (0.1, 0.1)), "uniform"),
        (_arch((64, 32)), "no_dropout"),
    ],
)
def test_neighbourhood_skips_kinds_that_change_nothing(centre: NetSpec, missing: str) -> None:
    """Check that uniform is skipped below 2 layers or when already uniform, and no_dropout without dropout."""
    assert missing not in {n.kind for n in neighbourhood(centre, N_IN, N_OUT)}


def test_neighbourhood_of_a_linear_centre_is_one_hidden_layer_at_each_width() -> None:
    """Check that a linear centre's neighbours are one hidden layer per width, sorted, without dropout."""
    centre = NetSpec(widths=(), dropouts=(), activation="tanh")
    neighbours = neighbourhood(centre, N_IN, N_OUT, hidden_widths=(128, 8, 32, 8))
    assert [n.kind for n in neighbours] == ["centre", "hidden_layer", "hidden_layer", "hidden_layer"]
    assert [n.change for n in neighbours[1:]] == [f"one hidden layer of {w}" for w in (8, 32, 128)]
    assert neighbours[2].architecture == NetSpec(widths=(32,), dropouts=(0.0,), activation="tanh")
    assert [(n.layer, n.delta_units) for n in neighbours[1:]] == [(0, 8), (0, 32), (0, 128)]
    # The default widths, when the caller has no space to derive them from.
    assert [n.architecture.widths for n in neighbourhood(centre, N_IN, N_OUT)][1:] == [(8,), (32,), (128,)]


@pytest.mark.parametrize("hidden_widths", [(), (8, 0), [8.0], "8", (True,)])
def test_neighbourhood_rejects_invalid_hidden_widths(hidden_widths: object) -> None:
    """Check that the widths of a linear centre's hidden layer must be a non-empty list of ints >= 1."""
    match = f"The 'hidden_widths' parameter of neighbourhood must be a non-empty list of ints >= 1. Got {hidden_widths!r} instead."
    with pytest.raises(InvalidSpaceError, match=re.escape(match)):
        neighbourhood(NetSpec(widths=(), dropouts=(), activation="relu"), N_IN, N_OUT, hidden_widths=hidden_widths)


def test_neighbourhood_keeps_the_first_of_repeated_steps() -> None:
    """Check that a step of 1 repeats the always-present +-1 change and is listed once."""
    neighbours = neighbourhood(_arch((64,)), N_IN, N_OUT)
    assert [n.change for n in neighbours].count("layer 1: 64 -> 65 (+1)") == 1
    assert _widths(neighbours).count((65,)) == 1


def test_neighbour_is_frozen() -> None:
    """Check that a neighbour cannot be changed after it is built, so it can key a dict."""
    neighbour = neighbourhood(_arch((8,)), N_IN, N_OUT)[0]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        neighbour.kind = "width"


@pytest.mark.parametrize("steps", [(0.0,), (-1,), (1.5,), (float("nan"),), (True,), "0.5", 0.5])
def test_neighbourhood_rejects_invalid_steps(steps: object) -> None:
    """Check that steps must be fractions in (0, 1) or whole neuron counts, in a list."""
    rule = "The 'steps' parameter of neighbourhood must be positive numbers; steps >= 1 must be whole neuron counts."
    with pytest.raises(InvalidSpaceError, match=re.escape(f"{rule} Got {steps!r} instead.")):
        neighbourhood(_arch((8,)), N_IN, N_OUT, steps=steps)


def test_neighbourhood_accepts_whole_float_steps() -> None:
    """Check that 2.0 is accepted as a neuron count, like 2."""
    assert _widths(neighbourhood(_arch((8,)), N_IN, N_OUT, steps=(2.0,))) == _widths(
        neighbourhood(_arch((8,)), N_IN, N_OUT, steps=(2,))
    )


@pytest.mark.parametrize(
    ("centre", "n_inputs", "n_outputs", "match"),
    [
        ((64, 32), N_IN, N_OUT, "The 'centre' parameter of neighbourhood must be a NetSpec"),
        (_arch((8,)), 0, N_OUT, "The 'n_inputs' parameter of neighbourhood must be an int >= 1. Got 0"),
        (_arch((8,)), N_IN, 2.0, "The 'n_outputs' parameter of neighbourhood must be an int >= 1. Got 2.0"),
    ],
)
def test_neighbourhood_rejects_invalid_centre_and_sizes(centre, n_inputs, n_outputs, match: str) -> None:
    """Check that the centre must be a NetSpec and the sizes ints >= 1."""
    with pytest.raises(InvalidSpaceError, match=re.escape(match)):
        neighbourhood(centre, n_inputs, n_outputs)


def test_across_sizes_neighbours_lists_widths_and_one_layer_more_or_less() -> None:
    """Check that the reduced set has +-1 and +-step widths, removals and additions, and nothing else."""
    neighbours = across_sizes_neighbours(_arch((64, 32), (0.1, 0.0)), N_IN, N_OUT, step=0.25)
    assert _widths(neighbours) == [
        (64, 32),
        (65, 32),
        (63, 32),
        (80, 32),
        (48, 32),
        (64, 33),
        (64, 31),
        (64, 40),
        (64, 24),
        (32,),
        (64,),
        (64, 64, 32),
        (64, 32, 32),
    ]
    assert {n.kind for n in neighbours} == {"centre", "width", "remove_layer", "add_layer"}


def test_across_sizes_neighbours_rejects_invalid_step() -> None:
    """Check that the single step follows the same rule as the steps of neighbourhood."""
    match = "The 'step' parameter of across_sizes_neighbours must be a positive number; a step >= 1 must be a whole"
    with pytest.raises(InvalidSpaceError, match=re.escape(match) + ".*Got 1.5 instead"):
        across_sizes_neighbours(_arch((8,)), N_IN, N_OUT, step=1.5)


def test_pick_centres_spreads_the_front_evenly_in_log_size() -> None:
    """Check that the ends of the front and the point nearest the log-midpoint are chosen, sorted by size."""
    # Sizes 10 ... 100000 all improve on the smaller ones; index order is shuffled on purpose.
    points = [(1000, 0.8), (10, 0.5), (100000, 0.9), (100, 0.6), (10000, 0.85), (300, 0.55)]
    assert pick_centres(points, k=3, direction="maximize") == [1, 0, 2]


def test_pick_centres_ignores_dominated_trials() -> None:
    """Check that a trial beaten by a smaller one is not chosen while the front has enough points."""
    points = [(10, 0.9), (50, 0.1), (100, 0.95), (1000, 0.99)]
    assert pick_centres(points, k=3, direction="maximize") == [0, 2, 3]


def test_pick_centres_minimize_reverses_which_values_are_good() -> None:
    """Check that with minimize the lower value is the better one."""
    points = [(10, 0.9), (50, 0.1), (100, 0.95), (1000, 0.99)]
    # Only (10, 0.9) and (50, 0.1) are on the front; the smallest of the rest fills the third place.
    assert pick_centres(points, k=2, direction="minimize") == [0, 1]
    assert pick_centres(points, k=3, direction="minimize") == [0, 1, 2]


def test_pick_centres_one_centre_is_the_best_trial() -> None:
    """Check that k=1 chooses the largest point of the front, the best value overall."""
    points = [(10, 0.5), (100, 0.7), (1000, 0.6)]
    assert pick_centres(points, k=1, direction="maximize") == [1]


def test_pick_centres_fills_from_the_next_front_and_stops_at_all_points() -> None:
    """Check that a short front is filled from the remaining trials and k beyond the count returns them all."""
    points = [(10, 0.5), (10, 0.5), (20, 0.4), (40, 0.3)]
    # The front is the first (10, 0.5) alone; its twin is on the next front, then (20, 0.4).
    assert pick_centres(points, k=3, direction="maximize") == [0, 1, 2]
    assert pick_centres(points, k=9, direction="maximize") == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("points", "k", "direction", "match"),
    [
        ([], 1, "maximize", "The 'points' parameter of pick_centres must be a non-empty list"),
        ([(10, 0.5), (0, 0.5)], 1, "maximize", "The 'points[1]' parameter of pick_centres must be an (n_params"),
        ([(10, float("nan"))], 1, "maximize", "The 'points[0]' parameter of pick_centres must be an (n_params"),
        ([(10, 0.5)], 0, "maximize", "The 'k' parameter of pick_centres must be an int >= 1. Got 0 instead."),
        ([(10, 0.5)], 1, "max", "The 'direction' parameter of pick_centres must be one of {'maximize', 'minimize'}"),
    ],
)
def test_pick_centres_rejects_invalid_input(points, k: int, direction: str, match: str) -> None:
    """Check that empty or malformed points, k < 1 and an unknown direction raise."""
    with pytest.raises(InvalidSpaceError, match=re.escape(match)):
        pick_centres(points, k=k, direction=direction)
