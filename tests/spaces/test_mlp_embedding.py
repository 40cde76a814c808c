"""Tests for the numeric-feature embedding in the search space: MLPSpace.embedding and NetSpec.embedding."""

import json

import optuna
import pytest
from optuna.samplers import RandomSampler

from archsearch.spaces import Candidate, InvalidSpaceError, MLPSpace, NetSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample_many(space: MLPSpace, n: int) -> list[tuple[Candidate, dict]]:
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    results = []
    for _ in range(n):
        trial = study.ask()
        results.append((space.sample(trial), trial.params))
    return results


def test_searched_embedding_is_sampled_only_with_hidden_layers() -> None:
    """Check that depth 0 stays the plain linear model and deeper trials sample embedding, then its dim."""
    space = MLPSpace(layers=(0, 2), embedding=["none", "periodic", "pl"], embedding_dim=[4, 16])
    seen = set()
    for candidate, params in _sample_many(space, 80):
        arch = candidate.architecture
        seen.add(arch.embedding)
        if arch.depth == 0:
            assert arch.embedding == "none" and "embedding" not in params
        else:
            assert params["embedding"] == arch.embedding
        # embedding_dim is a parameter only of trials that embed.
        assert ("embedding_dim" in params) == (arch.embedding != "none")
        if arch.embedding != "none":
            assert arch.embedding_dim == params["embedding_dim"] in (4, 16)
    assert seen == {"none", "periodic", "pl"}


def test_embedding_none_adds_no_embedding_parameter() -> None:
    """Check that `embedding = "none"` samples none and adds no parameter (as studies made before embeddings)."""
    for candidate, params in _sample_many(MLPSpace(layers=(1, 2), embedding="none"), 10):
        assert candidate.architecture.embedding == "none"
        assert not {"embedding", "embedding_dim"} & set(params)
        assert "embedding" not in candidate.architecture.to_dict()


def test_default_space_searches_none_and_pl_but_never_at_depth_0() -> None:
    """Check that the default space suggests embedding "none" or "pl" (dim 16) and keeps depth 0 the plain linear model."""
    seen = set()
    for candidate, params in _sample_many(MLPSpace(layers=(0, 2)), 40):
        architecture = candidate.architecture
        if architecture.depth == 0:
            assert architecture.embedding == "none" and "embedding" not in params
            continue
        assert params["embedding"] in ("none", "pl")
        seen.add(architecture.embedding)
        if architecture.embedding == "pl":
            assert architecture.embedding_dim == params["embedding_dim"] == 16
    assert seen == {"none", "pl"}


def test_single_embedding_value_fixes_it_and_round_trips() -> None:
    """Check that `embedding = "pl"` fixes the choice, is still suggested, and survives to_dict/from_dict."""
    space = MLPSpace(layers=(1, 1), embedding="pl", embedding_dim=16)
    assert (space.embedding, space.embedding_dim) == (("pl",), (16,))
    ((candidate, params),) = _sample_many(space, 1)
    assert (params["embedding"], params["embedding_dim"]) == ("pl", 16)
    assert MLPSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
    # A stored space from before embeddings existed reads as no embedding, and so compares as compatible.
    old = {k: v for k, v in MLPSpace().to_dict().items() if k not in ("embedding", "embedding_dim")}
    assert MLPSpace.from_dict(old).is_compatible_with(MLPSpace()) == []
    assert "embedding" in space.is_compatible_with(MLPSpace(layers=(1, 1), embedding_dim=16))


def test_fixed_params_pins_an_embedding_but_not_for_the_linear_model() -> None:
    """Check that baselines can pin an embedding, and the linear baseline cannot have one."""
    space = MLPSpace(layers=(0, 2), embedding=["none", "pl"])
    params = space.fixed_params([32], embedding="pl", embedding_dim=16)
    assert params["embedding"] == "pl"
    with pytest.raises(InvalidSpaceError, match=r"The override 'embedding' of MLPSpace.fixed_params is not sampled"):
        space.fixed_params([], embedding="pl")


def test_embedding_dim_matters_for_compatibility_only_where_an_embedding_can_be_sampled() -> None:
    """Check that a study stored with embedding ["none"] and dim 8 resumes under any dim, and a searching one does not."""
    old = MLPSpace(embedding="none", embedding_dim=8)
    assert old.is_compatible_with(MLPSpace(embedding="none")) == []
    assert MLPSpace(embedding_dim=8).is_compatible_with(MLPSpace()) == ["embedding_dim"]
    assert MLPSpace(embedding="none").is_compatible_with(MLPSpace()) == ["embedding"]


def test_architecture_embedding_round_trips_and_reads_old_dicts() -> None:
    """Check that to_dict carries the embedding only when there is one, and an old dict or trial reads as none."""
    embedded = NetSpec((8,), (0.0,), "relu", embedding="periodic", embedding_dim=4)
    assert NetSpec.from_dict(json.loads(json.dumps(embedded.to_dict()))) == embedded
    old = {"widths": [8], "dropouts": [0.0], "activation": "relu"}
    assert NetSpec.from_dict(old).embedding == "none"
    assert NetSpec.from_trial({**old, "depth": 1, "n_params": 99}) == NetSpec((8,), (0.0,), "relu")
    # Trials stored before the spec held the norm layer have it as a parameter only.
    assert NetSpec.from_trial(old, {"normalization": "batch"}) == NetSpec((8,), (0.0,), "relu", normalization="batch")
    assert NetSpec.from_trial({**old, "normalization": "layer"}, {"normalization": "batch"}).normalization == "layer"
    assert (
        Candidate.from_dict(
            {
                "architecture": old,
                "hyperparameters": {"lr": 0.1, "weight_decay": 0.0, "batch_size": 8, "optimizer": "adam"},
            }
        ).architecture.embedding
        == "none"
    )


def test_architecture_n_params_counts_embedded_numeric_inputs_only() -> None:
    """Check the hand count: one-hot inputs pass through, each numeric input becomes dim values."""
    arch = NetSpec((16,), (0.0,), "relu", embedding="pl", embedding_dim=4)
    # 3 numeric inputs: 3 * (4 bins x 4 + 4); first layer sees 3 * 4 + 2 one-hot inputs.
    assert arch.n_params(5, 2, n_numeric=3) == 3 * (4 * 4 + 4) + (14 * 16 + 16) + (16 * 2 + 2)
    periodic = NetSpec((), (), "relu", embedding="periodic", embedding_dim=2)
    # 2 frequencies and a Linear(4 -> 2) per feature; with n_numeric left out every input is numeric.
    assert periodic.n_params(3, 1) == 3 * (2 + 4 * 2 + 2) + (6 * 1 + 1)
    assert NetSpec((16,), (0.0,), "relu").n_params(5, 2, n_numeric=3) == (5 * 16 + 16) + (16 * 2 + 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"embedding": ["none", "fourier"]},
            r"The 'embedding' parameter of \[space\] must be a non-empty list of "
            r"distinct names from \{'none', 'periodic', 'pl'\}",
        ),
        ({"embedding": []}, r"The 'embedding' parameter of \[space\] .*Got \[\] instead"),
        (
            {"embedding_dim": [8, 0]},
            r"The 'embedding_dim' parameter of \[space\] must be a non-empty list of distinct "
            r"ints in the range \[1, 1,024\]. Got \[8, 0\] instead",
        ),
        ({"embedding_dim": 2.5}, r"The 'embedding_dim' parameter of \[space\] .*Got 2.5 instead"),
    ],
)
def test_mlp_space_rejects_invalid_embedding_fields(kwargs: dict, match: str) -> None:
    """Check that MLPSpace names the embedding field, its rule and the value."""
    with pytest.raises(InvalidSpaceError, match=match):
        MLPSpace(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embedding": "ple"}, r"The 'embedding' parameter of NetSpec must be one of .*Got 'ple' instead"),
        ({"embedding_dim": 0}, r"The 'embedding_dim' parameter of NetSpec must be an int .*Got 0 instead"),
    ],
)
def test_architecture_rejects_invalid_embedding(kwargs: dict, match: str) -> None:
    """Check that NetSpec names the embedding field, its rule and the value."""
    with pytest.raises(InvalidSpaceError, match=match):
        NetSpec((8,), (0.0,), "relu", **kwargs)
