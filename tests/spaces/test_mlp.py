import json

import optuna
import pytest
from optuna.samplers import RandomSampler
from optuna.trial import FixedTrial

from archsearch.spaces import Candidate, InvalidSpaceError, MLPSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample_many(space: MLPSpace, n: int) -> list[tuple[Candidate, dict]]:
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    results = []
    for _ in range(n):
        trial = study.ask()
        results.append((space.sample(trial), trial.params))
    return results


@pytest.mark.parametrize(
    "shape, funnel",
    [("free", "geometric"), ("uniform", "geometric"), ("funnel", "geometric"), ("funnel", "linear")],
)
def test_mlp_space_sample_gives_valid_candidates_for_each_shape(shape: str, funnel: str) -> None:
    """Check that random trials give candidates inside the space, with only the parameters they use."""
    space = MLPSpace(layers=(0, 4), shape=shape, funnel=funnel)
    for candidate, params in _sample_many(space, 60):
        arch, hyper = candidate.architecture, candidate.hyperparameters
        assert arch.depth == params["n_layers"]
        assert all(16 <= w <= 512 for w in arch.widths)
        # Conditional parameters exist only for layers that exist.
        width_names = {name for name in params if name.startswith("width_")}
        n_width_params = arch.depth if shape == "free" else min(arch.depth, 1)
        assert width_names == {f"width_{i}" for i in range(n_width_params)}
        assert {name for name in params if name.startswith("dropout_")} == {f"dropout_{i}" for i in range(arch.depth)}
        assert ("funnel_ratio" in params) == (shape == "funnel" and arch.depth >= 2)
        assert ("activation" in params) == (arch.depth >= 1)
        if shape == "uniform":
            assert len(set(arch.widths)) <= 1
        if shape == "funnel":
            assert list(arch.widths) == sorted(arch.widths, reverse=True)
        assert 1e-4 <= hyper.lr <= 3e-2
        assert hyper.batch_size in (64, 128, 256) and hyper.optimizer in ("adam", "adamw")


def test_mlp_space_sample_reaches_the_linear_model() -> None:
    """Check that 0 layers is sampled and gives a linear model with no layer parameters."""
    linear = [(c, p) for c, p in _sample_many(MLPSpace(), 40) if c.architecture.depth == 0]
    assert linear
    candidate, params = linear[0]
    assert candidate.architecture.widths == () and candidate.architecture.dropouts == ()
    # The activation is not searched for a linear model; the first choice is recorded.
    assert candidate.architecture.activation == "relu"
    assert set(params) <= {
        "n_layers",
        "lr",
        "use_weight_decay",
        "weight_decay",
        "batch_size",
        "optimizer",
        "lr_schedule",
        "label_smoothing",
    }


def test_mlp_space_sample_reaches_zero_dropout_exactly() -> None:
    """Check that the default dropout range hits exactly 0.0, meaning no Dropout layer."""
    dropouts = [p for c, _ in _sample_many(MLPSpace(layers=(1, 3)), 200) for p in c.architecture.dropouts]
    assert 0.0 in dropouts
    assert all(0.0 <= p <= 0.5 for p in dropouts)


def test_mlp_space_sample_without_dropout_adds_no_dropout_parameter() -> None:
    """Check that dropout=(0, 0) samples no dropout parameter and gives all-zero dropouts."""
    for candidate, params in _sample_many(MLPSpace(layers=(1, 3), dropout=(0.0, 0.0)), 20):
        assert candidate.architecture.dropouts == (0.0,) * candidate.architecture.depth
        assert not any(name.startswith("dropout_") for name in params)


def test_mlp_space_sample_weight_decay_modes() -> None:
    """Check the three weight decay modes: zero as a choice, log range only, and switched off."""
    samples = _sample_many(MLPSpace(weight_decay=(0.0, 1e-3)), 40)
    decays = [c.hyperparameters.weight_decay for c, _ in samples]
    assert 0.0 in decays and all(d == 0.0 or 1e-6 <= d <= 1e-3 for d in decays)
    assert all(("weight_decay" in p) == p["use_weight_decay"] for _, p in samples)

    for candidate, params in _sample_many(MLPSpace(weight_decay=(1e-5, 1e-3)), 10):
        assert "use_weight_decay" not in params and 1e-5 <= params["weight_decay"] <= 1e-3

    for candidate, params in _sample_many(MLPSpace(weight_decay=(0.0, 0.0)), 5):
        assert candidate.hyperparameters.weight_decay == 0.0
        assert "use_weight_decay" not in params and "weight_decay" not in params


@pytest.mark.parametrize(
    "funnel, first, ratio, expected",
    [
        ("geometric", 100, 0.5, (100, 50, 25)),
        ("linear", 100, 0.5, (100, 75, 50)),
        # Layers never go below width[0] = 16.
        ("geometric", 20, 0.25, (20, 16, 16)),
    ],
)
def test_mlp_space_sample_funnel_widths(funnel: str, first: int, ratio: float, expected: tuple) -> None:
    """Check that funnel widths follow the documented formula, rounding and lower bound."""
    space = MLPSpace(shape="funnel", funnel=funnel, funnel_ratio=(0.25, 1.0), dropout=(0.0, 0.0))
    trial = FixedTrial(
        {
            "n_layers": 3,
            "width_0": first,
            "funnel_ratio": ratio,
            "activation": "relu",
            "lr": 1e-3,
            "use_weight_decay": False,
            "batch_size": 64,
            "optimizer": "adam",
            "lr_schedule": "constant",
            "label_smoothing": 0.0,
            "normalization": "none",
            "embedding": "none",
        }
    )
    assert space.sample(trial).architecture.widths == expected


def test_mlp_space_sample_suggests_single_value_ranges() -> None:
    """Check that a range with low == high is still a parameter, so trial.params holds the candidate."""
    ((candidate, params),) = _sample_many(MLPSpace(layers=(2, 2), width=(64, 64), activation=("gelu",)), 1)
    assert candidate.architecture.widths == (64, 64)
    assert (params["n_layers"], params["width_1"], params["activation"]) == (2, 64, "gelu")


@pytest.mark.parametrize(
    "shape, widths, overrides",
    [
        ("free", [300, 20, 64], {}),
        ("uniform", [48, 48], {}),
        ("funnel", [128, 64, 32], {"funnel_ratio": 0.5}),
        ("free", [], {}),
    ],
)
def test_mlp_space_fixed_params_reproduces_architecture(shape: str, widths: list, overrides: dict) -> None:
    """Check that enqueuing fixed_params makes the next sampled trial build exactly those widths."""
    space = MLPSpace(shape=shape)
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    study.enqueue_trial(space.fixed_params(widths, **overrides))
    assert space.sample(study.ask()).architecture.widths == tuple(widths)


def test_mlp_space_fixed_params_gives_linear_baseline_and_applies_overrides() -> None:
    """Check the linear baseline's params and that overrides pin the other parameters."""
    space = MLPSpace()
    assert space.fixed_params([]) == {"n_layers": 0}
    params = space.fixed_params([32], dropout_0=0.0, lr=1e-3, use_weight_decay=False, optimizer="adamw")
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    study.enqueue_trial(params)
    candidate = space.sample(study.ask())
    assert candidate.architecture.dropouts == (0.0,)
    # The training recipe keys follow the space's defaults; these four are the overrides and the sampled batch size.
    assert (
        candidate.hyperparameters.to_dict().items()
        >= {
            "lr": 1e-3,
            "weight_decay": 0.0,
            "batch_size": candidate.hyperparameters.batch_size,
            "optimizer": "adamw",
        }.items()
    )


@pytest.mark.parametrize(
    "space_kwargs, widths, overrides, match",
    [
        ({"layers": (1, 3)}, [], {}, r"'widths' parameter of MLPSpace.fixed_params .* list of 1 to 3"),
        ({}, [64, 0], {}, r"'widths' .* a list of ints >= 1"),
        ({"shape": "uniform"}, [64, 32], {}, r"equal widths when shape is 'uniform'"),
        ({}, [64], {"n_layers": 2}, r"takes the architecture from 'widths' only"),
        ({}, [64], {"dropout_1": 0.1}, r"'dropout_1' .* not sampled .*: n_layers, width_0, dropout_0,"),
        ({}, [], {"activation": "relu"}, r"override 'activation' .* not sampled"),
        ({}, [64], {"activation": "elu"}, r"'activation' parameter of MLPSpace.fixed_params must be one of"),
        ({}, [64], {"lr": -1.0}, r"'lr' parameter of Hyperparameters must be a float > 0"),
    ],
)
def test_mlp_space_fixed_params_rejects_unreproducible_input(
    space_kwargs: dict, widths: list, overrides: dict, match: str
) -> None:
    """Check that fixed_params refuses widths or overrides that sample() could not reproduce."""
    with pytest.raises(InvalidSpaceError, match=match):
        MLPSpace(**space_kwargs).fixed_params(widths, **overrides)


def test_mlp_space_round_trips_through_json() -> None:
    """Check that to_dict is JSON-able and from_dict rebuilds an equal space."""
    space = MLPSpace(shape="funnel", baselines=[[64, 32], []], activation=["relu"])
    data = json.loads(json.dumps(space.to_dict()))
    assert data["baselines"] == [[64, 32], []]
    assert MLPSpace.from_dict(data) == space


def test_mlp_space_from_dict_rejects_unknown_key() -> None:
    """Check that a typo in a [space] key names the key meant, and a key like none of them the valid keys."""
    with pytest.raises(InvalidSpaceError, match=r"Unknown key 'widht' in \[space\]; did you mean 'width'\?$"):
        MLPSpace.from_dict({"widht": [8, 64]})
    with pytest.raises(InvalidSpaceError, match=r"Unknown key 'colour' in \[space\]; valid keys are: layers, width,"):
        MLPSpace.from_dict({"colour": [8, 64]})


def test_mlp_space_is_compatible_with_ignores_baselines_only() -> None:
    """Check that only a change of baselines (or of the recipe baseline) keeps stored trials compatible."""
    space = MLPSpace()
    assert space.is_compatible_with(MLPSpace(baselines=[[64]], recipe_baseline=False)) == []
    assert space.is_compatible_with(MLPSpace(width=[16, 512])) == []
    assert space.is_compatible_with(MLPSpace(width=(8, 512), lr=(1e-3, 1e-2))) == ["width", "lr"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layers": (-1, 2)}, r"'layers' parameter of \[space\] must be a pair of ints .* with 0 <= low"),
        ({"layers": (3, 1)}, r"'layers' .* 0 <= low <= high <= 64. Got \(3, 1\) instead"),
        ({"layers": (0, 65)}, r"'layers' .* 0 <= low <= high <= 64. Got \(0, 65\) instead"),
        ({"width": (16, 65537)}, r"'width' .* 1 <= low <= high <= 65536. Got \(16, 65537\) instead"),
        (
            {"baselines": [[999999]]},
            r"'baselines\[0\]' .* a list of widths in the 'width' range \[16, 512\]. Got \[999999\] instead",
        ),
        ({"layers": (0, True)}, r"'layers' .* pair of ints"),
        ({"layers": 3}, r"'layers' .* pair of ints"),
        (
            {"width": (0, 8)},
            r"The 'width' parameter of \[space\] must be a pair of ints \(low, high\) with "
            r"1 <= low <= high <= 65536. Got \(0, 8\) instead.",
        ),
        ({"width": (64, 32)}, r"'width' .* 1 <= low <= high"),
        ({"width": (16.0, 64)}, r"'width' .* pair of ints"),
        ({"width_log": 1}, r"'width_log' .* a bool"),
        ({"width_step": 0, "width_log": False}, r"'width_step' .* an int >= 1"),
        ({"width_step": 8}, r"'width_step' .* 1 when width_log is true .*set width_log to false"),
        ({"width_step": 5, "width_log": False}, r"'width_step' .* a divisor of .* = 496"),
        ({"shape": "pyramid"}, r"'shape' .* one of \{'free', 'uniform', 'funnel'\}. Got 'pyramid'"),
        ({"funnel": "exp"}, r"'funnel' .* one of \{'geometric', 'linear'\}"),
        ({"funnel_ratio": (0.0, 0.5)}, r"'funnel_ratio' .* 0 < low <= high <= 1"),
        ({"funnel_ratio": (0.5, 1.5)}, r"'funnel_ratio' .* 0 < low <= high <= 1"),
        ({"dropout": (0.0, 1.0)}, r"'dropout' .* 0 <= low <= high < 1"),
        ({"dropout": (-0.1, 0.5)}, r"'dropout' .* 0 <= low <= high < 1"),
        ({"dropout": (0.4, 0.2)}, r"'dropout' .* 0 <= low <= high < 1"),
        ({"dropout_step": 0.0}, r"'dropout_step' .* a float > 0"),
        ({"dropout_step": 0.15}, r"'dropout_step' .* divides dropout\[1\] - dropout\[0\]"),
        ({"activation": ()}, r"'activation' .* non-empty list of distinct names from \{'relu'"),
        ({"activation": ("relu", "swish")}, r"'activation' .* names from"),
        ({"activation": ("relu", "relu")}, r"'activation' .* distinct"),
        ({"activation": "relu"}, r"'activation' .* list"),
        ({"lr": (0.0, 1e-2)}, r"'lr' .* 0 < low <= high"),
        ({"lr": (1e-2, 1e-3)}, r"'lr' .* 0 < low <= high"),
        ({"lr": (1e-3, float("inf"))}, r"'lr' .* pair of floats"),
        ({"weight_decay": (-1e-4, 1e-3)}, r"'weight_decay' .* 0 <= low <= high"),
        ({"weight_decay_min": 0.0}, r"'weight_decay_min' .* a float in \(0, weight_decay\[1\]\]"),
        ({"weight_decay_min": 1e-2}, r"'weight_decay_min' .* = \(0, 0.001\). Got 0.01 instead"),
        ({"batch_size": ()}, r"'batch_size' .* non-empty list of distinct ints in the range \[1, 1,048,576\]"),
        ({"batch_size": (64, 0)}, r"'batch_size' .* ints in the range \[1, 1,048,576\]"),
        ({"batch_size": (64, True)}, r"'batch_size' .* ints in the range \[1, 1,048,576\]"),
        ({"optimizer": ("adam", "lbfgs")}, r"'optimizer' .* names from \{'adam', 'adamw', 'sgd'\}"),
        ({"baselines": (64, 32)}, r"'baselines\[0\]' .* a list of ints >= 1. Got 64 instead"),
        ({"baselines": 64}, r"'baselines' .* a list of width lists"),
        ({"baselines": [[64, 32, 16, 8]]}, r"'baselines\[0\]' .* list of 0 to 3 widths \(the 'layers'"),
        ({"baselines": [[64], [32, 16]], "shape": "uniform"}, r"'baselines\[1\]' .* equal widths"),
        ({"recipe_baseline": "yes"}, r"The 'recipe_baseline' parameter of \[space\] must be true or false. Got 'yes'"),
    ],
)
def test_mlp_space_rejects_invalid_fields(kwargs: dict, match: str) -> None:
    """Check that each invalid field raises the scikit-learn style error naming the field and value."""
    with pytest.raises(InvalidSpaceError, match=match):
        MLPSpace(**kwargs)


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        (
            MLPSpace(),
            {"n_layers": 3, "width_0": 256, "width_2": 256, "dropout_1": 0.0, "activation": "relu", "lr": 1e-3}
            | {"batch_size": 128, "optimizer": "adamw", "lr_schedule": "cosine", "label_smoothing": 0.1}
            | {"normalization": "batch", "use_weight_decay": False, "embedding": "none"},
        ),
        # Every value moved into a narrow space: clipped numbers, first choices, the nearest batch size.
        (
            MLPSpace(
                layers=(1, 1),
                width=(4, 64),
                dropout=(0.1, 0.5),
                activation=("tanh",),
                lr=(3e-3, 1e-2),
                batch_size=(32, 512),
                optimizer=("sgd",),
                lr_schedule=("onecycle",),
                label_smoothing=(0.15, 0.2),
                normalization=("layer",),
            ),
            {"n_layers": 1, "width_0": 64, "dropout_0": 0.1, "activation": "tanh", "lr": 3e-3, "batch_size": 32}
            | {"optimizer": "sgd", "lr_schedule": "onecycle", "label_smoothing": 0.15, "normalization": "layer"},
        ),
    ],
)
def test_recipe_params_moves_the_recipe_into_the_space(space: MLPSpace, expected: dict) -> None:
    """Check that the recipe baseline's params are valid for the space and as close to the recipe as it allows."""
    params = space.recipe_params()
    assert {k: params[k] for k in expected} == expected
    # The params replay to a valid candidate of the space, as an enqueued trial would.
    candidate = space.replay(params)
    assert candidate.architecture.depth == params["n_layers"]
    assert "label_smoothing" not in space.recipe_params(task="regression")


def test_recipe_params_with_an_embedding_change_only_the_embedding() -> None:
    """Check that recipe_params(embedding="pl") is the recipe with the pl embedding (and the space's values per
    feature), and that a space without it keeps its own first choice, as for any other choice it lacks."""
    space = MLPSpace()
    plain, embedded = space.recipe_params(), space.recipe_params(embedding="pl")
    assert (embedded["embedding"], embedded["embedding_dim"]) == ("pl", space.embedding_dim[0])
    assert {k: v for k, v in embedded.items() if k != "embedding_dim"} == plain | {"embedding": "pl"}
    assert space.replay(embedded).architecture.embedding == "pl"
    assert MLPSpace(embedding=("none",)).recipe_params(embedding="pl").get("embedding", "none") == "none"
