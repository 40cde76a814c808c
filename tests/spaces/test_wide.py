"""Tests of `fit_space`: the default space fitted to wide inputs and many classes (issue #24)."""

from __future__ import annotations

import pytest

from archsearch.spaces import MAX_EMBEDDED_FEATURES, MLPSpace, fit_space, wide_width


def test_a_narrow_table_keeps_the_default_space():
    """Check that digits-sized data (64 features, 10 classes) searches exactly the default space."""
    space, notes = fit_space(MLPSpace(), 64, 10)
    assert space == MLPSpace() and notes == []


def test_wide_inputs_drop_the_embedding_and_widen_the_widths():
    """Check that 2,000 features and 40 classes search no embedding and widths 64 to 1,024, and say so."""
    space, notes = fit_space(MLPSpace(), 2000, 40, given=())
    assert space.embedding == ("none",)
    assert space.width == (64, 1024)
    assert notes == [
        f"Space: no per-feature embedding on 2,000 input features (above {MAX_EMBEDDED_FEATURES}); "
        '[space] embedding = ["none", "pl"] searches it anyway.',
        "Space: hidden widths 64 to 1024 for 2,000 inputs and 40 outputs; [space] width sets them.",
    ]


def test_an_embedding_the_user_wrote_is_kept_with_a_warning():
    """Check that an explicit embedding on wide inputs is searched, with a note that it is slow."""
    space, notes = fit_space(MLPSpace(embedding=("none", "pl")), 2000, 40, given=("embedding",))
    assert space.embedding == ("none", "pl")
    assert "[space] embedding = ['none', 'pl'] on 2,000 input features" in notes[0]


def test_a_width_the_user_wrote_is_kept():
    """Check that a [space] width is never changed, and with no key given the differing fields count as given."""
    space, _ = fit_space(MLPSpace(width=(8, 64)), 2000, 40)
    assert space.width == (8, 64)


def test_the_lower_width_bound_stays_below_a_user_baseline():
    """Check that a baseline narrower than the scaled lower bound stays inside the range."""
    space, _ = fit_space(MLPSpace(baselines=((32,),)), 2000, 40, given=("baselines",))
    assert space.width == (32, 1024)


@pytest.mark.parametrize(
    ("features", "outputs", "expected"),
    [(13, 3, (16, 512)), (2000, 40, (64, 1024)), (2048, 1000, (1024, 1024)), (100_000, 2, (16, 2048))],
)
def test_the_width_rule(features, outputs, expected):
    """Check the stated rule at a few sizes: low from the classes, high from the features, capped."""
    assert wide_width(features, outputs) == expected


def test_blocks_are_searched_as_one_categorical_and_reach_the_net_spec():
    """Check that [space] blocks adds the parameter `blocks` (names joined by +) and the NetSpec reads it."""
    import optuna

    space = MLPSpace(layers=(0, 1), blocks=(("vgg",), ("xception",), ("vgg", "xception")))
    study = optuna.create_study()
    study.enqueue_trial({"blocks": "vgg+xception"})
    trial = study.ask()
    net = space.sample(trial).architecture
    assert net.blocks == ("vgg", "xception") and net.to_dict()["blocks"] == ["vgg", "xception"]
    assert trial.distributions["blocks"].choices == ("vgg", "xception", "vgg+xception")
    # Without blocks, no parameter and no key.
    plain = MLPSpace(layers=(0, 1)).sample(optuna.create_study().ask()).architecture
    assert plain.blocks == () and "blocks" not in plain.to_dict()


@pytest.mark.parametrize(
    "blocks",
    [[["vgg"], ["vgg"]], [[]], [["a+b"]], "vgg", [["vgg", "vgg"]]],
)
def test_invalid_block_choices_name_the_space_section(blocks):
    """Check that malformed [space] blocks are refused naming the key."""
    from archsearch.spaces import InvalidSpaceError

    with pytest.raises(InvalidSpaceError, match=r"'blocks' parameter of \[space\]"):
        MLPSpace(blocks=blocks)


def test_head_is_searched_only_when_given_more_than_one():
    """Check that the default space has no head parameter and ["softmax", "one_vs_rest"] adds one."""
    import optuna

    from archsearch.spaces import InvalidSpaceError

    assert "head" not in optuna.create_study().ask().params
    space = MLPSpace(layers=(0, 1), head=("softmax", "one_vs_rest"))
    study = optuna.create_study()
    study.enqueue_trial({"head": "one_vs_rest"})
    assert space.sample(study.ask()).architecture.head == "one_vs_rest"
    assert MLPSpace(head="one_vs_rest").head == ("one_vs_rest",)
    with pytest.raises(InvalidSpaceError, match=r"'head' parameter of \[space\]"):
        MLPSpace(head=("sigmoid",))


def test_sensitivity_neighbours_keep_the_centres_blocks_and_head():
    """Check that every neighbour reads the centre's blocks with its head, and the keys say so."""
    from archsearch.spaces import NetSpec, architecture_key, neighbourhood

    centre = NetSpec((32,), (0.0,), "relu", blocks=("a",), head="one_vs_rest")
    neighbours = neighbourhood(centre, 10, 3)
    assert neighbours and all(
        n.architecture.blocks == ("a",) and n.architecture.head == "one_vs_rest" for n in neighbours
    )
    assert architecture_key(centre) == "w=32|d=0|a=relu|in=a|h=one_vs_rest"
    assert architecture_key(NetSpec((), (), "relu", blocks=("a", "b"))) == "linear|in=a+b"
    assert architecture_key(NetSpec((), (), "relu")) == "linear"


def test_two_to_four_data_blocks_are_searched_alone_and_together_unless_the_user_chose():
    """Check the default choices, and that a user's [space] blocks, one block or five are left as they are."""
    space, notes = fit_space(MLPSpace(), 96, 5, given=(), block_names=("vgg", "xception"))
    assert space.blocks == (("vgg",), ("xception",), ("vgg", "xception"))
    assert notes[-1].startswith("Space: feature blocks searched alone and together (['vgg'], ['xception'], ['vgg',")
    chosen = MLPSpace(blocks=(("vgg", "xception"),))
    assert fit_space(chosen, 96, 5, given=("blocks",), block_names=("vgg", "xception"))[0].blocks == chosen.blocks
    assert fit_space(MLPSpace(), 96, 5, given=(), block_names=("vgg",))[0].blocks == ()
    assert fit_space(MLPSpace(), 96, 5, given=(), block_names=tuple("abcde"))[0].blocks == ()
